package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// Limits of one API call. GitHub answers these calls in well under a second
// with a few KiB; the limits keep a slow or hostile server (or a proxy in
// between) from holding a reconcile worker or the operator's memory.
const (
	// DefaultTimeout bounds a request from dial to the last byte of the
	// body when the caller's http.Client sets no Timeout.
	DefaultTimeout = 30 * time.Second
	// MaxResponseBytes bounds the body of a response that is read.
	MaxResponseBytes = 1 << 20
	// maxMessage bounds what of GitHub's error message an Error repeats.
	maxMessage = 200
	// maxRedirects is net/http's own default, kept when a caller's
	// CheckRedirect is wrapped.
	maxRedirects = 10
)

// origin identifies where a token may go: scheme, host and port, with the
// default port filled in, so that "https://ghe.example.com" and
// "https://GHE.example.com:443" are the same and http on the same host or
// another port is not.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// bearer adds the token to requests for the API's own origin and removes
// any Authorization from the others. It decides per request, redirects
// included, rather than trusting net/http to strip the header: a header set
// by a RoundTripper is added again on every hop. go-github's WithAuthToken
// would also set the Transport of the caller's shared http.Client.
type bearer struct {
	origin string
	token  string
	next   http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	next := b.next
	if next == nil {
		next = http.DefaultTransport
	}
	req = req.Clone(req.Context())
	req.Header.Del("Authorization")
	if origin(req.URL) == b.origin {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	return next.RoundTrip(req)
}

// checkRedirect follows redirects within the API's origin (GitHub answers
// 301 or 307 for renamed and transferred repositories) and hands any other
// back to the caller unfollowed: the answer of another host would be
// trusted as GitHub's, its state of a pull request included.
func checkRedirect(apiOrigin string, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if origin(req.URL) != apiOrigin {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// call is one API request.
type call struct {
	op     string // for errors, like "create pull request"
	method string
	path   string // below the base URL, like "repos/o/r/pulls"
	query  url.Values
	in     any         // JSON body, nil for none
	header http.Header // extra request headers
}

// response is what do read of an answer in 2xx or 304.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError is GitHub's documented error body: a message and, for 422,
// errors with their own messages (objects, or strings for some endpoints).
type apiError struct {
	Message          string            `json:"message"`
	Errors           []json.RawMessage `json:"errors"`
	DocumentationURL string            `json:"documentation_url"`
}

func (a apiError) messages() []string {
	var out []string
	if a.Message != "" {
		out = append(out, a.Message)
	}
	for _, raw := range a.Errors {
		var obj struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(raw, &obj) == nil && obj.Message != "":
			out = append(out, obj.Message)
		case json.Unmarshal(raw, &s) == nil && s != "":
			out = append(out, s)
		}
	}
	return out
}

// do sends c and reads the answer. A status other than 2xx and 304 is an
// *Error (or *RateLimitedError); so is a 2xx body larger than
// MaxResponseBytes. With out non-nil, a 2xx body is decoded into it.
func (c *Client) do(ctx context.Context, cl call, out any) (*response, error) {
	if err := c.blockedErr(cl.op); err != nil {
		return nil, err
	}
	u := *c.base
	u.Path += cl.path
	u.RawPath = ""
	u.RawQuery = cl.query.Encode()

	var body io.Reader
	if cl.in != nil {
		b, err := json.Marshal(cl.in)
		if err != nil {
			return nil, &Error{Op: cl.op, Message: err.Error()}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, &Error{Op: cl.op, Message: c.clean(err.Error())}
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "canaryop")
	if cl.in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportErr(cl.op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, tooLarge, err := readLimited(resp.Body)
	if err != nil {
		return nil, c.transportErr(cl.op, err)
	}
	c.observe(resp)

	switch s := resp.StatusCode; {
	case s == http.StatusNotModified:
		return &response{status: s, header: resp.Header}, nil
	case s >= 200 && s <= 299:
		if tooLarge {
			return nil, &Error{Op: cl.op, Status: s, kind: ErrResponseTooLarge}
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				// The decoder's message quotes the body; say only what
				// went wrong.
				return nil, &Error{Op: cl.op, Status: s, Message: "the response is not the expected JSON"}
			}
		}
		return &response{status: s, header: resp.Header, body: data}, nil
	case s >= 300 && s <= 399:
		// checkRedirect only hands back redirects to another origin.
		host := ""
		if loc, err := resp.Location(); err == nil {
			host = loc.Host
		}
		return nil, &Error{Op: cl.op, Status: s, kind: ErrForeignHost,
			Message: "redirect to " + c.clean(host) + " not followed: the token is only sent to " + c.clean(c.base.Host)}
	}
	return nil, c.statusErr(cl.op, resp, data, tooLarge)
}

// readLimited reads at most MaxResponseBytes of r, and says whether there
// was more.
func readLimited(r io.Reader) (data []byte, tooLarge bool, err error) {
	data, err = io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > MaxResponseBytes {
		return nil, true, nil
	}
	return data, false, nil
}

// statusErr turns an answer in 4xx or 5xx into an *Error with a sentinel.
func (c *Client) statusErr(op string, resp *http.Response, data []byte, tooLarge bool) error {
	var body apiError
	if !tooLarge {
		// A body that is not GitHub's JSON leaves no message.
		_ = json.Unmarshal(data, &body)
	}
	details := body.messages()
	e := &Error{Op: op, Status: resp.StatusCode, Message: c.clean(strings.Join(details, "; ")), details: details}
	if retry, ok := c.rateLimited(resp, body.DocumentationURL); ok {
		e.kind = ErrRateLimited
		return &RateLimitedError{RetryAfter: retry, Err: e}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.kind = ErrAuth
	case http.StatusNotFound:
		e.kind = ErrNotFound
	case http.StatusUnprocessableEntity:
		e.kind = ErrRejected
	}
	return e
}

// transportErr reports a request that got no (complete) answer. The
// *url.Error's URL is left out: after a redirect it is the server's
// Location, which the server chose.
func (c *Client) transportErr(op string, err error) error {
	e := &Error{Op: op}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	e.Message = c.clean(cause.Error())
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.Canceled):
		e.kind = context.Canceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		e.kind = context.DeadlineExceeded
	}
	return e
}

// clean makes text from the server (or an error quoting it) safe to put in
// an error, which ends up in status and events: the token is redacted
// first, so that a cut cannot leave a part of it, then control, bidi and
// invisible characters go and the text is cut to maxMessage runes.
func (c *Client) clean(s string) string {
	return safetext.Line(c.redact(s), maxMessage)
}

func (c *Client) redact(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[redacted]")
}
