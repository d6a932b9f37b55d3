package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	// maxClients bounds the client cache. Each CanaryApp names its
	// Prometheus, so the number of URLs is small; the bound only stops a
	// stream of edited URLs or rotated Secrets from growing the cache
	// forever.
	maxClients = 64
	// dialTimeout bounds the TCP connect on its own, so a black-holed
	// address fails fast even under a long query timeout.
	dialTimeout = 5 * time.Second
	// dialerName labels the connection metrics of prometheus/common's
	// dialer. It is fixed: a URL there would let authors mint metric labels.
	dialerName = "canaryop_prometheus"
)

// Prometheus is a Provider backed by the Prometheus HTTP API
// (/api/v1/query). It is safe for concurrent use.
type Prometheus struct {
	allow         AllowList
	creds         Credentials
	dial          config.DialContextFunc
	maxBody       int64
	headerTimeout time.Duration
	now           func() time.Time

	mu      sync.Mutex
	clients map[clientKey]*http.Client
}

var _ Provider = (*Prometheus)(nil)

// clientKey names a cached client: the server, and the credentials it
// carries in the version the Secret had when it was built. The digest of
// the credentials themselves keeps two Auths that share a Source and
// Version (a Credentials that sets neither) from sharing a client.
type clientKey struct {
	base, source, version string
	digest                [sha256.Size]byte
}

// digest hashes everything in auth that the client is built from.
func digest(auth *Auth) [sha256.Size]byte {
	h := sha256.New()
	for _, field := range [][]byte{[]byte(auth.BearerToken), []byte(auth.Username), []byte(auth.Password), auth.CA, []byte(strconv.FormatBool(auth.InsecureSkipVerify))} {
		// Length-prefixed, so that moving bytes between fields changes the sum.
		_ = binary.Write(h, binary.BigEndian, uint64(len(field)))
		h.Write(field)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// Option configures a Prometheus.
type Option func(*Prometheus)

// WithAllowList limits queries to URLs under the list's prefixes; a URL
// outside gets an Inconclusive result with ReasonURLNotAllowed and causes
// no network activity. An empty list allows every valid URL.
func WithAllowList(a AllowList) Option {
	return func(p *Prometheus) { p.allow = a }
}

// WithCredentials sets where credentials come from. Without it no query
// carries credentials.
func WithCredentials(c Credentials) Option {
	return func(p *Prometheus) { p.creds = c }
}

// WithDialContext replaces the function that opens connections, for example
// to refuse some addresses. The dial timeout still applies.
func WithDialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(p *Prometheus) { p.dial = dial }
}

// WithMaxResponseBytes sets the largest answer body read; a larger one is
// Inconclusive with ReasonResponseTooLarge. The default is
// DefaultMaxResponseBytes; n below 1 keeps it.
func WithMaxResponseBytes(n int64) Option {
	return func(p *Prometheus) {
		if n > 0 {
			p.maxBody = n
		}
	}
}

// WithResponseHeaderTimeout bounds the wait for the response headers of each
// request, whatever the query's own timeout. Prometheus sends them once it
// has evaluated the query, so the default is MaxTimeout; d of zero or less
// keeps it.
func WithResponseHeaderTimeout(d time.Duration) Option {
	return func(p *Prometheus) {
		if d > 0 {
			p.headerTimeout = d
		}
	}
}

// WithClock sets the clock that picks the evaluation time sent with each
// query. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(p *Prometheus) { p.now = now }
}

// NewPrometheus returns a Provider that queries Prometheus over HTTP.
func NewPrometheus(opts ...Option) *Prometheus {
	p := &Prometheus{
		dial:          (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		maxBody:       DefaultMaxResponseBytes,
		headerTimeout: MaxTimeout,
		now:           time.Now,
		clients:       map[clientKey]*http.Client{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Check runs q as an instant query at the current time and judges the
// answer; see the package doc.
func (p *Prometheus) Check(ctx context.Context, q Query) Result {
	e, err := parseEndpoint(q.URL)
	if err == nil {
		err = p.allow.admit(e)
	}
	if err != nil {
		return refused(err)
	}
	where := e.display()

	// The deadline covers the credential lookup too, so that a slow API
	// server cannot hold the caller longer than a slow Prometheus could.
	timeout := queryTimeout(q.Timeout)
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var auth *Auth
	if p.creds != nil {
		if auth, err = p.creds.Lookup(qctx, q.Namespace, q.URL); err != nil {
			return Result{
				Verdict: v1.CheckInconclusive,
				Reason:  ReasonCredentialsUnavailable,
				Message: truncate(fmt.Sprintf("credentials for Prometheus at %s: %v", where, err)),
			}
		}
	}
	client, err := p.client(e, auth)
	if err != nil {
		return Result{Verdict: v1.CheckInconclusive, Reason: ReasonCredentialsUnavailable, Message: truncate(err.Error())}
	}

	a, err := p.query(qctx, client, e, q.Expr, timeout)
	if err != nil {
		return p.failure(ctx, qctx, where, timeout, err)
	}
	return judge(where, a)
}

// queryTimeout is the deadline of one query: the asked one, within
// (0, MaxTimeout].
func queryTimeout(asked time.Duration) time.Duration {
	if asked <= 0 {
		return DefaultTimeout
	}
	return min(asked, MaxTimeout)
}

func refused(err error) Result {
	r := Result{Verdict: v1.CheckInconclusive, Reason: ReasonURLInvalid, Message: truncate(err.Error())}
	if uerr, ok := errors.AsType[*URLError](err); ok {
		r.Reason = uerr.Reason
	}
	return r
}

// client returns the cached HTTP client for e with auth, building it on
// first use.
func (p *Prometheus) client(e endpoint, auth *Auth) (*http.Client, error) {
	key := clientKey{base: e.String()}
	if auth != nil {
		key.source, key.version, key.digest = auth.Source, auth.Version, digest(auth)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	c, err := p.newClient(auth)
	if err != nil {
		return nil, err
	}
	if len(p.clients) >= maxClients {
		// Each client has a transport of its own (its TLS settings and
		// credentials differ), so its idle connections go with it.
		for _, old := range p.clients {
			old.CloseIdleConnections()
		}
		clear(p.clients)
	}
	p.clients[key] = c
	return c, nil
}

// newClient builds a client the way Prometheus builds its own scrape and
// remote-read clients, so credentials and TLS follow its well-trodden
// rules, and adds what an untrusted URL needs: no redirects, a dial
// timeout and a wait for headers that is bounded on its own. The zero
// ProxyConfig means no proxy from the environment either: the request goes
// to the host the allow-list checked.
func (p *Prometheus) newClient(auth *Auth) (*http.Client, error) {
	cfg := config.DefaultHTTPClientConfig
	cfg.FollowRedirects = false
	source := "(none)"
	if auth != nil {
		source = auth.Source
		switch {
		case auth.BearerToken != "" && (auth.Username != "" || auth.Password != ""):
			return nil, fmt.Errorf("Prometheus credentials from %s: set either a bearer token or a username and password, not both", source)
		case auth.BearerToken != "":
			cfg.Authorization = &config.Authorization{Type: "Bearer", Credentials: config.Secret(auth.BearerToken)}
		case auth.Username != "" || auth.Password != "":
			cfg.BasicAuth = &config.BasicAuth{Username: auth.Username, Password: config.Secret(auth.Password)}
		}
		cfg.TLSConfig = config.TLSConfig{CA: string(auth.CA), InsecureSkipVerify: auth.InsecureSkipVerify}
	}
	// config's errors name fields and the word "inline", never a value.
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("Prometheus credentials from %s: %w", source, err)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		return p.dial(ctx, network, addr)
	}
	rt, err := config.NewRoundTripperFromConfig(cfg, dialerName,
		config.WithDialContextFunc(dial),
		config.WithUserAgent("canaryop"),
		config.WithIdleConnTimeout(90*time.Second))
	if err != nil {
		return nil, fmt.Errorf("Prometheus credentials from %s: %w", source, err)
	}
	return &http.Client{
		Transport:     &headerTimeout{next: rt, d: p.headerTimeout},
		CheckRedirect: noRedirects,
	}, nil
}

// answer is what came back for one request.
type answer struct {
	status    int
	mediaType string // "" when absent or unparsable
	body      []byte // nil when not read
}

// query sends the instant query as a form POST, and again as a GET when the
// POST is refused, as Prometheus' own client does for servers behind
// GET-only proxies.
func (p *Prometheus) query(ctx context.Context, c *http.Client, e endpoint, expr string, timeout time.Duration) (answer, error) {
	// The evaluation time is sent explicitly so the instant judged is the
	// instant this check records, and the timeout is sent so Prometheus
	// stops evaluating once nobody waits for the answer.
	form := url.Values{
		"query":   {expr},
		"time":    {formatTime(p.now())},
		"timeout": {timeout.String()},
	}
	a, err := p.do(ctx, c, http.MethodPost, e.apiURL(), form)
	if err == nil && (a.status == http.StatusForbidden || a.status == http.StatusMethodNotAllowed || a.status == http.StatusNotImplemented) {
		return p.do(ctx, c, http.MethodGet, e.apiURL()+"?"+form.Encode(), nil)
	}
	return a, err
}

func (p *Prometheus) do(ctx context.Context, c *http.Client, method, target string, form url.Values) (answer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// A query has no side effects: this lets the transport retry the
		// POST on a kept-alive connection the server had closed, as it
		// would a GET. The empty value is not sent.
		req.Header["Idempotency-Key"] = nil
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, mediaType: mediaType(resp.Header.Get("Content-Type"))}
	// Only a JSON body can hold anything this package reads; any other is
	// left unread, and closing it drops the connection.
	if a.mediaType != "application/json" || a.status/100 == 3 {
		return a, nil
	}
	if a.body, err = readBody(resp, p.maxBody); err != nil {
		return answer{}, err
	}
	return a, nil
}

// mediaType is the bare media type of a Content-Type header, or "" when it
// is absent or unparsable. It is the only text of a foreign answer that a
// message shows, so it is kept short.
func mediaType(header string) string {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil || len(mt) > 64 {
		return ""
	}
	return mt
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.Unix())+float64(t.Nanosecond())/1e9, 'f', -1, 64)
}

// apiResponse is the envelope of every Prometheus API answer. The "error"
// text is not decoded: a server of the author's choosing writes it.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// judge turns one answer into a Result.
func judge(where string, a answer) Result {
	ok := a.status/100 == 2
	if a.status/100 == 3 {
		return inconclusive("", fmt.Sprintf("Prometheus at %s answered with a redirect (%d); redirects are not followed", where, a.status))
	}
	var r apiResponse
	if a.body != nil && json.Unmarshal(a.body, &r) == nil {
		switch {
		case r.Status == "error":
			return inconclusive("", apiErrorMessage(where, a.status, r.ErrorType))
		case r.Status == "success" && ok:
			return evaluateData(where, r.Data)
		}
	}
	if ok {
		return inconclusive("", fmt.Sprintf("Prometheus at %s sent an unreadable answer (%d, %s)", where, a.status, describeType(a.mediaType)))
	}
	return inconclusive("", fmt.Sprintf("Prometheus at %s returned %s (%s)", where, statusText(a.status), describeType(a.mediaType)))
}

func evaluateData(where string, raw json.RawMessage) Result {
	unreadable := inconclusive("", fmt.Sprintf("Prometheus at %s sent an unreadable answer (a result it could not decode)", where))
	if len(raw) == 0 || string(raw) == "null" {
		return evaluate(nil)
	}
	var d queryData
	if json.Unmarshal(raw, &d) != nil {
		return unreadable
	}
	switch d.ResultType {
	case "vector":
		var v model.Vector
		if json.Unmarshal(d.Result, &v) != nil {
			return unreadable
		}
		return evaluate(v)
	case "scalar":
		var s model.Scalar
		if json.Unmarshal(d.Result, &s) != nil {
			return unreadable
		}
		return evaluate(&s)
	case "matrix":
		return evaluate(model.Matrix{})
	case "string":
		return evaluate(&model.String{})
	default:
		return inconclusive("", "query returned an unknown result type; it must return an instant vector or a scalar")
	}
}

// errorWords say what each Prometheus errorType means. The error text
// beside it is never shown: any server can send this envelope.
var errorWords = map[string]string{
	"bad_data":    "the query or its parameters are invalid",
	"execution":   "the query failed while it was evaluated",
	"timeout":     "the query timed out in Prometheus",
	"canceled":    "Prometheus canceled the query",
	"internal":    "Prometheus failed internally",
	"unavailable": "Prometheus is not ready",
	"not_found":   "Prometheus does not serve this endpoint",
}

func apiErrorMessage(where string, status int, errorType string) string {
	words, known := errorWords[errorType]
	if !known {
		errorType, words = "unknown", "an error of a type Prometheus does not define"
	}
	// 400 and 422 are how Prometheus itself answers a query it rejects;
	// any other status (401 from an auth proxy, 503) is worth showing.
	if status/100 == 2 || status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		return fmt.Sprintf("Prometheus at %s rejected the query (%s): %s", where, errorType, words)
	}
	return fmt.Sprintf("Prometheus at %s returned %s (%s): %s", where, statusText(status), errorType, words)
}

func statusText(status int) string {
	switch status / 100 {
	case 4:
		return fmt.Sprintf("client error: %d", status)
	case 5:
		return fmt.Sprintf("server error: %d", status)
	default:
		return fmt.Sprintf("status %d", status)
	}
}

func describeType(mt string) string {
	if mt == "" {
		return "no content type"
	}
	return mt
}

// failure says in one short line why a query did not complete. parent is
// the caller's context and qctx the one bounded by the query timeout, so a
// caller's cancellation is not reported as a slow Prometheus. No error text
// is shown: a resolver or TLS error names addresses and certificates of
// whatever the URL reached.
func (p *Prometheus) failure(parent, qctx context.Context, where string, timeout time.Duration, err error) Result {
	switch {
	case errors.Is(err, errTooLarge):
		return Result{
			Verdict: v1.CheckInconclusive,
			Reason:  ReasonResponseTooLarge,
			Message: truncate(fmt.Sprintf("Prometheus at %s: response exceeds %s", where, formatSize(p.maxBody))),
		}
	case parent.Err() != nil:
		return inconclusive("", fmt.Sprintf("query to Prometheus at %s stopped: %v", where, parent.Err()))
	case errors.Is(qctx.Err(), context.DeadlineExceeded):
		return inconclusive("", fmt.Sprintf("Prometheus at %s did not answer within %s", where, timeout))
	case errors.Is(err, errNoHeaders):
		return inconclusive("", fmt.Sprintf("Prometheus at %s sent no response headers within %s", where, p.headerTimeout))
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return inconclusive("", fmt.Sprintf("cannot reach Prometheus at %s: timed out", where))
	}
	if isTLSError(err) {
		return inconclusive("", fmt.Sprintf("cannot reach Prometheus at %s: TLS handshake failed", where))
	}
	return inconclusive("", fmt.Sprintf("cannot reach Prometheus at %s: connection failed", where))
}

func isTLSError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		rerr  tls.RecordHeaderError
		aerr  tls.AlertError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &rerr) || errors.As(err, &aerr) ||
		errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}

// formatSize writes a byte count the way limits are usually given.
func formatSize(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
