package github

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Rate is what GitHub last said about the token's primary rate limit, from
// the X-RateLimit-* headers of its latest answer. It is the zero Rate until
// an answer carried them.
type Rate struct {
	// Limit is the number of requests per hour.
	Limit int
	// Remaining is how many of them are left until Reset.
	Remaining int
	// Reset is when the window starts again.
	Reset time.Time
}

// Bounds of a wait the client asks for. GitHub's primary window is an hour;
// a longer Retry-After or a Reset far away is a clock skew or a bad proxy,
// and waiting days for it would stall the write-back for nothing.
const (
	minRetryAfter = time.Second
	maxRetryAfter = time.Hour
	// defaultRetryAfter is GitHub's advice for a secondary rate limit that
	// names no time: "wait for at least one minute".
	defaultRetryAfter = time.Minute
)

// RateLimitedError is an *Error (errors.Is ErrRateLimited) that says how
// long to wait: GitHub refused the request under its primary or secondary
// rate limit (403 or 429 with Retry-After or X-RateLimit-Remaining: 0, or
// any 429), or the request was not sent at all because an earlier answer
// said the limit is spent until then. The token is shared by every app of
// the credential, so the caller should requeue after RetryAfter rather
// than back off on its own schedule.
type RateLimitedError struct {
	// RetryAfter is how long to wait before the next request, between one
	// second and one hour.
	RetryAfter time.Duration
	// Err is the failed call.
	Err *Error
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter.Round(time.Second))
}

// Unwrap returns Err, so that errors.As finds the *Error and errors.Is
// finds ErrRateLimited.
func (e *RateLimitedError) Unwrap() error { return e.Err }

// Rate returns what GitHub last said about the token's rate limit.
func (c *Client) Rate() Rate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

// observe records the rate-limit headers of an answer. An answer that
// spends the last request blocks the client until the reset, so that the
// next call costs nothing and says when to come back.
func (c *Client) observe(resp *http.Response) {
	h := resp.Header
	remaining, err := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if err != nil {
		return
	}
	limit, _ := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	reset, _ := parseReset(h.Get("X-RateLimit-Reset"))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rate = Rate{Limit: limit, Remaining: remaining, Reset: reset}
	if remaining == 0 {
		until := reset
		if limit := c.now().Add(maxRetryAfter); until.After(limit) {
			until = limit
		}
		if until.After(c.blocked) {
			c.blocked = until
		}
	}
}

// rateLimited decides whether an error answer is GitHub's rate limit, and
// for how long, following GitHub's documented rules: Retry-After first,
// then X-RateLimit-Reset when X-RateLimit-Remaining is 0, else a minute.
// A 403 without any of these signs is a permission problem (ErrAuth).
func (c *Client) rateLimited(resp *http.Response, docURL string) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	now := c.now()
	h := resp.Header
	var wait time.Duration
	switch ra := h.Get("Retry-After"); {
	case ra != "":
		if secs, err := strconv.Atoi(ra); err == nil {
			wait = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			wait = t.Sub(now)
		} else {
			wait = defaultRetryAfter
		}
	case h.Get("X-RateLimit-Remaining") == "0":
		wait = defaultRetryAfter
		if reset, ok := parseReset(h.Get("X-RateLimit-Reset")); ok {
			wait = reset.Sub(now)
		}
	case resp.StatusCode == http.StatusTooManyRequests, strings.Contains(strings.ToLower(docURL), "rate-limit"):
		wait = defaultRetryAfter
	default:
		return 0, false
	}
	wait = min(max(wait, minRetryAfter), maxRetryAfter)
	c.mu.Lock()
	if until := now.Add(wait); until.After(c.blocked) {
		c.blocked = until
	}
	c.mu.Unlock()
	return wait, true
}

// blockedErr refuses a call while an earlier answer said the rate limit is
// spent: sending it would only spend more of the shared token's quota (a
// secondary limit lasts longer for clients that keep trying).
func (c *Client) blockedErr(op string) error {
	now := c.now()
	c.mu.Lock()
	until := c.blocked
	c.mu.Unlock()
	if !now.Before(until) {
		return nil
	}
	return &RateLimitedError{RetryAfter: until.Sub(now), Err: &Error{Op: op, kind: ErrRateLimited,
		Message: "not sent: an earlier answer said the limit is spent until " + until.UTC().Format(time.RFC3339)}}
}

// parseReset reads X-RateLimit-Reset, seconds since the Unix epoch.
func parseReset(s string) (time.Time, bool) {
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}
