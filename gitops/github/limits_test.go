package github

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// serve answers every request with handler, behind the token check of a
// fake API.
func serve(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestResponseBodyIsBounded(t *testing.T) {
	huge := strings.Repeat("a", 2*MaxResponseBytes)
	tests := []struct {
		name   string
		status int
		want   error
	}{
		// A pull request object over 1 MiB is not GitHub's; reading it
		// whole is what an OOM looks like.
		{"2xx", http.StatusOK, ErrResponseTooLarge},
		// An error keeps its status; only the message is not read.
		{"404", http.StatusNotFound, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"number":1,"state":"open","message":"` + huge + `"}`))
			})
			_, err := newClient(t, srv.URL, token).Get(context.Background(), repo, 1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error repeats the body: %d bytes", len(err.Error()))
			}
		})
	}
}

// TestErrorMessageIsCleaned: only GitHub's message fields are repeated,
// cut short, without line breaks, bidi or other invisible characters, and
// with the token redacted even when it would straddle the cut.
func TestErrorMessageIsCleaned(t *testing.T) {
	message := "Validation\u202e Failed\n\x1b[31mred" + strings.Repeat(" x", 500) + token
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"message":           message,
			"errors":            []any{map[string]string{"message": "No commits between main and b\u2066"}, "plain " + token},
			"documentation_url": "https://docs.github.com/rest",
			"secret_field":      "not a documented field " + token,
		})
	})
	_, err := newClient(t, srv.URL, token).Ensure(context.Background(), Request{Repo: repo, Head: "b", Base: "main", Title: "t"})
	var ge *Error
	if !errors.As(err, &ge) || !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want an *Error with ErrRejected", err)
	}
	if n := utf8.RuneCountInString(ge.Message); n > maxMessage {
		t.Errorf("Message has %d runes, want at most %d", n, maxMessage)
	}
	if !strings.HasPrefix(ge.Message, "Validation\uFFFD Failed  [31mred x x") {
		t.Errorf("Message = %q", ge.Message)
	}
	for _, r := range err.Error() {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Errorf("error holds %U: %q", r, err)
		}
	}
	if strings.Contains(err.Error(), "secret_field") || strings.Contains(err.Error(), "not a documented field") {
		t.Errorf("error repeats an undocumented field: %q", err)
	}
	assertNoToken(t, err)
}

func TestTransportErrorDoesNotQuoteTheServer(t *testing.T) {
	// A Location to another host is refused before it is fetched, and the
	// error names the host, not the URL the server chose.
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "https://evil.example/\u202e?"+strings.Repeat("q", 10_000))
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	_, err := newClient(t, srv.URL, token).Get(context.Background(), repo, 1)
	if !errors.Is(err, ErrForeignHost) {
		t.Fatalf("err = %v, want ErrForeignHost", err)
	}
	if strings.Contains(err.Error(), "qqq") || strings.Contains(err.Error(), "\u202e") || !strings.Contains(err.Error(), "evil.example") {
		t.Errorf("err = %q", err)
	}
}

func TestEveryRequestHasADeadline(t *testing.T) {
	c, err := New(nil, "", token)
	if err != nil {
		t.Fatal(err)
	}
	if c.hc.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v, want %v", c.hc.Timeout, DefaultTimeout)
	}
	c, err = New(&http.Client{}, "", token)
	if err != nil {
		t.Fatal(err)
	}
	if c.hc.Timeout != DefaultTimeout {
		t.Errorf("Timeout of a caller's client without one = %v, want %v", c.hc.Timeout, DefaultTimeout)
	}

	// A server that accepts and never answers.
	stop := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(stop) })
	c, err = New(&http.Client{Timeout: 200 * time.Millisecond}, srv.URL+"/api/v3/", token)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Get(context.Background(), repo, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Get took %v", d)
	}
	assertNoToken(t, err)
}

func TestRateLimited(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	reset := strconv.FormatInt(start.Add(90*time.Second).Unix(), 10)
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		docURL  string
		want    time.Duration
		wantErr error
	}{
		{"primary, 403", http.StatusForbidden,
			map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset, "X-RateLimit-Limit": "5000"}, "", 90 * time.Second, ErrRateLimited},
		{"primary, 429", http.StatusTooManyRequests,
			map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, "", 90 * time.Second, ErrRateLimited},
		{"secondary with Retry-After", http.StatusForbidden,
			map[string]string{"Retry-After": "30", "X-RateLimit-Remaining": "4000"}, "", 30 * time.Second, ErrRateLimited},
		{"Retry-After as a date", http.StatusTooManyRequests,
			map[string]string{"Retry-After": start.Add(2 * time.Minute).Format(http.TimeFormat)}, "", 2 * time.Minute, ErrRateLimited},
		{"secondary without headers", http.StatusForbidden, nil,
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits", time.Minute, ErrRateLimited},
		{"429 without headers", http.StatusTooManyRequests, nil, "", time.Minute, ErrRateLimited},
		{"reset in the past", http.StatusForbidden,
			map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}, "", time.Second, ErrRateLimited},
		{"Retry-After of a week", http.StatusForbidden,
			map[string]string{"Retry-After": "604800"}, "", time.Hour, ErrRateLimited},
		{"403 is a permission otherwise", http.StatusForbidden,
			map[string]string{"X-RateLimit-Remaining": "4999"}, "https://docs.github.com/rest/pulls/pulls", 0, ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests int
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				requests++
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, tt.status, map[string]any{"message": "API rate limit exceeded", "documentation_url": tt.docURL})
			})
			c := newClient(t, srv.URL, token)
			now := start
			c.now = func() time.Time { return now }

			_, err := c.Get(context.Background(), repo, 1)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var rl *RateLimitedError
			if tt.wantErr != ErrRateLimited {
				if errors.As(err, &rl) {
					t.Errorf("err = %v is a *RateLimitedError", err)
				}
				return
			}
			if !errors.As(err, &rl) || rl.RetryAfter != tt.want {
				t.Fatalf("err = %#v, want a *RateLimitedError with RetryAfter %v", err, tt.want)
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.Status != tt.status {
				t.Errorf("err = %v, want an *Error with status %d", err, tt.status)
			}

			// Until then the client does not spend more of the shared
			// quota: the next call is answered without a request.
			now = now.Add(tt.want / 2)
			_, err = c.Get(context.Background(), repo, 1)
			if !errors.As(err, &rl) || rl.RetryAfter != tt.want-tt.want/2 {
				t.Errorf("second call: err = %v, want a *RateLimitedError for the rest of the wait", err)
			}
			if requests != 1 {
				t.Errorf("server received %d requests, want 1", requests)
			}
			now = now.Add(tt.want)
			_, _ = c.Get(context.Background(), repo, 1)
			if requests != 2 {
				t.Errorf("after the wait the server received %d requests, want 2", requests)
			}
		})
	}
}

func TestRateIsRecordedAndASpentLimitBlocks(t *testing.T) {
	now := time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC)
	remaining := 2
	requests := 0
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		requests++
		remaining--
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.Itoa(fakeReset))
		writeJSON(w, http.StatusOK, map[string]any{"number": 1, "state": "open"})
	})
	c := newClient(t, srv.URL, token)
	c.now = func() time.Time { return now }
	if _, err := c.Get(context.Background(), repo, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Rate(), (Rate{Limit: 5000, Remaining: 1, Reset: time.Unix(fakeReset, 0)}); got != want {
		t.Errorf("Rate = %+v, want %+v", got, want)
	}
	if _, err := c.Get(context.Background(), repo, 1); err != nil {
		t.Fatal(err)
	}
	// That answer spent the last request: the next waits for the reset.
	_, err := c.Get(context.Background(), repo, 1)
	var rl *RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Minute || !errors.Is(err, ErrRateLimited) {
		t.Errorf("err = %v, want a *RateLimitedError until the reset", err)
	}
	if requests != 2 {
		t.Errorf("server received %d requests, want 2", requests)
	}
}

// TestGetIsConditional: polling a pull request sends the ETag of the last
// answer; an unchanged pull request comes back 304, which GitHub does not
// count against the rate limit, and a changed one in full.
func TestGetIsConditional(t *testing.T) {
	f, srv := newFake(t, token)
	f.prs = []*fakePR{{Number: 1, Head: "o:a", Base: "main", State: "open"}}
	c := newClient(t, srv.URL, token)

	first, err := c.Get(context.Background(), repo, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rq := f.last(); rq.IfNoneMatch != "" {
		t.Errorf("first Get sent If-None-Match %q", rq.IfNoneMatch)
	}
	before := c.Rate().Remaining

	for range 3 {
		again, err := c.Get(context.Background(), repo, 1)
		if err != nil {
			t.Fatalf("conditional Get: %v", err)
		}
		if again != first {
			t.Errorf("conditional Get = %+v, want %+v", again, first)
		}
		if rq := f.last(); rq.IfNoneMatch == "" {
			t.Errorf("poll sent no If-None-Match")
		}
	}
	if after := c.Rate().Remaining; after != before {
		t.Errorf("rate remaining went from %d to %d over 304s", before, after)
	}

	f.mu.Lock()
	f.prs[0].State, f.prs[0].Merged = "closed", true
	f.mu.Unlock()
	merged, err := c.Get(context.Background(), repo, 1)
	if err != nil {
		t.Fatal(err)
	}
	if merged.State != StateMerged {
		t.Errorf("after the merge Get = %+v, want merged", merged)
	}
	// Another pull request has its own ETag.
	if _, err := c.Get(context.Background(), repo, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get #2: err = %v, want ErrNotFound", err)
	}
	if rq := f.last(); rq.IfNoneMatch != "" {
		t.Errorf("Get #2 sent the ETag of #1: %q", rq.IfNoneMatch)
	}
}

func TestUnexpectedPullRequestIsRefused(t *testing.T) {
	for _, body := range []string{`{"number":0,"state":"open"}`, `{"number":1,"state":"merged-by-proxy"}`, `[1,2]`, `not json ` + token} {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		})
		_, err := newClient(t, srv.URL, token).Get(context.Background(), repo, 1)
		if err == nil {
			t.Errorf("Get accepted %s", body)
		}
		assertNoToken(t, err)
	}
}
