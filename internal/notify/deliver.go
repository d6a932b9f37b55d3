package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/atzedevries/canaryop/internal/opmetrics"
)

// deliver sends one event to one provider, retrying with backoff. Its logs
// name the provider and the outcome in fixed words: never the address, a
// header or the receiver's answer.
func (d *Dispatcher) deliver(ctx context.Context, dl delivery) {
	e := dl.event
	log := ctrl.LoggerFrom(ctx).WithValues("namespace", e.Namespace, "name", e.Name, "event", e.Kind, "provider", dl.endpoint.Name)
	result := "failed"
	defer func() { opmetrics.Notification(e.Namespace, e.Name, dl.endpoint.Name, string(e.Kind), result) }()
	body := dl.body
	if body == nil {
		if dl.format == nil {
			log.Info("Notification not sent: no format for the provider's type", "type", dl.endpoint.Type)
			return
		}
		var err error
		if body, err = dl.format.Body(e); err != nil {
			log.Error(err, "Notification not sent: building its body")
			return
		}
	}
	backoff := d.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		why, retry := d.post(ctx, dl.endpoint, body)
		if why == "" {
			result = "sent"
			log.V(1).Info("Notification sent", "attempt", attempt)
			return
		}
		if !retry || attempt >= d.opts.Attempts {
			log.Info("Notification not delivered", "attempts", attempt, "why", why)
			return
		}
		log.V(1).Info("Notification attempt failed; retrying", "attempt", attempt, "why", why, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.opts.MaxBackoff)
	}
}

// post makes one request. It returns "" on a 2xx answer, else why not in
// fixed words and whether another attempt may help (no answer, 408, 429,
// 5xx).
func (d *Dispatcher) post(ctx context.Context, ep Endpoint, body []byte) (why string, retry bool) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	return Post(ctx, d.client, ep, body, d.opts.MaxResponseBytes)
}

// Post sends body to ep with its headers under ctx's deadline, reading at
// most limit bytes of the answer, which it throws away. It returns "" on a
// 2xx answer, else why not in fixed words (the status code, a timeout, a
// failed connection), never the address or the answer, and whether another
// attempt may help.
func Post(ctx context.Context, c *http.Client, ep Endpoint, body []byte, limit int64) (why string, retry bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.address, bytes.NewReader(body))
	if err != nil {
		return "the request could not be built", false
	}
	for k, vs := range ep.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "canaryop")
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "no answer before the deadline", true
		}
		return "the request failed (connection or TLS)", true
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return "", false
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Sprintf("answered HTTP %d", code), true
	default:
		return fmt.Sprintf("answered HTTP %d", code), false
	}
}
