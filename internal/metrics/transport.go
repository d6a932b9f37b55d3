package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

var (
	// errTooLarge: the answer's body exceeds the size limit.
	errTooLarge = errors.New("response too large")
	// errNoHeaders: the server sent no response headers in time.
	errNoHeaders = errors.New("no response headers in time")
)

// noRedirects is the CheckRedirect of every client: a redirect from an
// author's URL could send the operator's request, and the admin's
// credentials, to any other service.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// headerTimeout bounds the wait for response headers, as
// http.Transport.ResponseHeaderTimeout would: the transport that
// prometheus/common/config builds does not expose that field. The body is
// not bounded here; the query's deadline covers it.
type headerTimeout struct {
	next http.RoundTripper
	d    time.Duration
}

func (rt *headerTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(rt.d, func() { cancel(errNoHeaders) })
	resp, err := rt.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		// The timer fired: whatever came back is cut off.
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("waited %s: %w", rt.d, errNoHeaders)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport below.
func (rt *headerTimeout) CloseIdleConnections() {
	if c, ok := rt.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// cancelOnClose releases the request's context once the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// readBody reads an answer of at most limit bytes. A declared length above
// the limit fails before reading; otherwise the buffer grows by doubling but
// never past limit+1, so a hostile body costs about twice the limit in
// allocations however large it is. The caller closes the body: closing it
// unread drops the connection instead of draining the rest.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, errTooLarge
	}
	size := int64(32 << 10)
	if resp.ContentLength >= 0 {
		size = resp.ContentLength + 1 // +1 to see EOF without growing
	}
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, errTooLarge
			}
			// Jump straight to limit+1 rather than to limit and then once
			// more: the last copy is the largest.
			next := 2 * int64(cap(buf))
			if next >= limit {
				next = limit + 1
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, errTooLarge
		}
		switch {
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}
