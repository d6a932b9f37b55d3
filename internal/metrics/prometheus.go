package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// maxClients bounds the client cache. Each CanaryApp names its Prometheus,
// so the number of URLs is small; the bound only stops a stream of edited
// URLs from growing the cache forever. A client is cheap to rebuild because
// all of them share one transport.
const maxClients = 64

// Prometheus is a Provider backed by the Prometheus HTTP API
// (/api/v1/query). It is safe for concurrent use.
type Prometheus struct {
	transport http.RoundTripper
	now       func() time.Time

	mu      sync.Mutex
	clients map[string]promv1.API
}

var _ Provider = (*Prometheus)(nil)

// Option configures a Prometheus.
type Option func(*Prometheus)

// WithRoundTripper sets the transport of every request, for example to add
// TLS settings. The default is a clone of http.DefaultTransport.
func WithRoundTripper(rt http.RoundTripper) Option {
	return func(p *Prometheus) { p.transport = rt }
}

// WithClock sets the clock that picks the evaluation time sent with each
// query. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(p *Prometheus) { p.now = now }
}

// NewPrometheus returns a Provider that queries Prometheus over HTTP.
func NewPrometheus(opts ...Option) *Prometheus {
	p := &Prometheus{
		// A transport of our own keeps connection pooling per provider
		// instead of sharing http.DefaultTransport with unrelated clients.
		transport: http.DefaultTransport.(*http.Transport).Clone(),
		now:       time.Now,
		clients:   map[string]promv1.API{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Check runs q as an instant query at the current time and judges the
// answer; see the package doc.
func (p *Prometheus) Check(ctx context.Context, q Query) Result {
	where := redactURL(q.URL)
	client, err := p.client(q.URL)
	if err != nil {
		return inconclusive("", redactSecrets(q.URL, err.Error()))
	}

	timeout := q.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The evaluation time is sent explicitly so the instant judged is the
	// instant this check records, and the timeout is sent so Prometheus stops
	// evaluating once nobody waits for the answer.
	val, _, _, err := client.Query(qctx, q.Expr, p.now(), promv1.WithTimeout(timeout))
	if err != nil {
		return inconclusive("", redactSecrets(q.URL, queryErrorMessage(ctx, qctx, where, timeout, err)))
	}
	return evaluate(val)
}

// client returns the cached API client for rawURL, creating it on first use.
func (p *Prometheus) client(rawURL string) (promv1.API, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[rawURL]; ok {
		return c, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL in its error; keep only the reason.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("invalid Prometheus URL: %w", err)
	}
	if u.Host == "" {
		return nil, errors.New("invalid Prometheus URL: want http:// or https:// with a host")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid Prometheus URL %q: want http:// or https://", redactURL(rawURL))
	}
	c, err := api.NewClient(api.Config{Address: rawURL, RoundTripper: p.transport})
	if err != nil {
		return nil, fmt.Errorf("invalid Prometheus URL %q: %w", redactURL(rawURL), err)
	}
	if len(p.clients) >= maxClients {
		clear(p.clients)
	}
	qapi := promv1.NewAPI(c)
	p.clients[rawURL] = qapi
	return qapi, nil
}

// queryErrorMessage says in one short line why a query did not run. parent is
// the caller's context and qctx the one bounded by the query timeout, so a
// caller's cancellation is not reported as a slow Prometheus.
func queryErrorMessage(parent, qctx context.Context, where string, timeout time.Duration, err error) string {
	switch {
	case parent.Err() != nil:
		return fmt.Sprintf("query to Prometheus at %s stopped: %v", where, parent.Err())
	case errors.Is(qctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("Prometheus at %s did not answer within %s", where, timeout)
	}

	if perr, ok := errors.AsType[*promv1.Error](err); ok {
		return prometheusErrorMessage(where, perr)
	}
	// net/http errors quote the request URL (with the password masked but the
	// user name kept); the wrapped error is the part worth reading.
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		err = uerr.Err
	}
	return fmt.Sprintf("cannot reach Prometheus at %s: %v", where, err)
}

func prometheusErrorMessage(where string, perr *promv1.Error) string {
	switch perr.Type {
	case promv1.ErrBadResponse:
		// The client cannot decode a string result; report it like the other
		// result types it cannot judge.
		if strings.Contains(perr.Msg, `unexpected value type "string"`) {
			return "query returned a string; it must return an instant vector or a scalar"
		}
		return fmt.Sprintf("Prometheus at %s sent an unreadable answer: %s", where, perr.Msg)
	case promv1.ErrServer, promv1.ErrClient:
		// A generic HTTP failure. Prometheus still explains 503 (timeout,
		// canceled) and 500 (internal) in a JSON body; a proxy may send text.
		return fmt.Sprintf("Prometheus at %s returned %s%s", where, perr.Msg, bodyReason(perr.Detail))
	default:
		// bad_data, execution, timeout, canceled: Prometheus's own words.
		return fmt.Sprintf("Prometheus at %s rejected the query (%s): %s", where, perr.Type, perr.Msg)
	}
}

// bodyReason extracts a short reason from an HTTP error body: the "error"
// field of a Prometheus API error, or else the body's text on one line.
func bodyReason(body string) string {
	var apiErr struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &apiErr) == nil && apiErr.Status == "error" && apiErr.Error != "" {
		return ": " + apiErr.Error
	}
	text := strings.Join(strings.Fields(body), " ")
	if text == "" {
		return ""
	}
	return ": " + truncateTo(text, 120)
}

// redactURL returns scheme://host/path of rawURL: no userinfo, query or
// fragment, any of which may hold credentials.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// redactSecrets removes the URL's password and userinfo from msg wherever
// they appear, for example echoed back in an error body. Messages are built
// from the redacted URL already; this is the last line of defence.
func redactSecrets(rawURL, msg string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return msg
	}
	// The whole userinfo first: once the password is masked it no longer matches.
	if ui := u.User.String(); ui != "" {
		msg = strings.ReplaceAll(msg, ui+"@", "")
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "REDACTED")
	}
	return msg
}
