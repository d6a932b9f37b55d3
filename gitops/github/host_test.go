package github

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// recorder is a server that is not the API: it records the Authorization
// header of whatever reaches it.
type recorder struct {
	mu    sync.Mutex
	auths []string
}

func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auths = append(rec.auths, r.Header.Get("Authorization"))
		rec.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"number": 1, "state": "merged-by-b", "html_url": "https://b.example/pull/1"})
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

// redirecting answers every request with status, pointing to target plus
// the request's path.
func redirecting(t *testing.T, status int, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, status)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRedirectToAnotherHostGetsNoToken is M6: server A (the API) answers
// 307 to server B. B must never see the token. Before the fix the bearer
// RoundTripper set it again on the redirected request.
func TestRedirectToAnotherHostGetsNoToken(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			b, srvB := newRecorder(t)
			srvA := redirecting(t, status, srvB.URL)
			c := newClient(t, srvA.URL, token)

			_, err := c.Get(context.Background(), repo, 1)
			_, errEnsure := c.Ensure(context.Background(), rollbackRequest())
			for _, auth := range b.got() {
				if auth != "" {
					t.Errorf("server B received Authorization %q", auth)
				}
			}
			if n := len(b.got()); n != 0 {
				t.Errorf("server B received %d requests; its answer would be taken for GitHub's", n)
			}
			for _, err := range []error{err, errEnsure} {
				if !errors.Is(err, ErrForeignHost) {
					t.Errorf("err = %v, want ErrForeignHost", err)
				}
				var ge *Error
				if !errors.As(err, &ge) || ge.Status != status {
					t.Errorf("err = %#v, want an *Error with status %d", err, status)
				}
				assertNoToken(t, err)
			}
		})
	}
}

// TestRedirectWithinTheAPIIsFollowed: GitHub redirects the API paths of a
// renamed repository; those stay on the API's origin and keep the token.
func TestRedirectWithinTheAPIIsFollowed(t *testing.T) {
	f := &fakeGitHub{t: t, token: token, fail: map[string]failure{}}
	f.prs = []*fakePR{{Number: 1, Head: "o:a", Base: "main", State: "open"}}
	mux := http.NewServeMux()
	mux.Handle("/api/v3/repos/o/old/", http.RedirectHandler("/api/v3/repos/o/r/pulls/1", http.StatusMovedPermanently))
	mux.Handle("/", f)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	c := newClient(t, srv.URL, token)
	pr, err := c.Get(context.Background(), Repo{Owner: "o", Name: "old"}, 1)
	if err != nil {
		t.Fatalf("Get through a same-host redirect: %v", err)
	}
	if pr.Number != 1 || pr.State != StateOpen {
		t.Errorf("PR = %+v", pr)
	}
	if rq := f.last(); rq.Path != "/api/v3/repos/o/r/pulls/1" || rq.Auth != "Bearer "+token {
		t.Errorf("redirected request = %s with Authorization %q", rq, rq.Auth)
	}
}

// TestTokenOnlyForTheAPIOrigin checks the RoundTripper itself, whatever
// sends the request: another host, or the same host on another port or
// scheme, gets no Authorization.
func TestTokenOnlyForTheAPIOrigin(t *testing.T) {
	f, srvA := newFake(t, token)
	b, srvB := newRecorder(t)
	c := newClient(t, srvA.URL, token)

	for _, target := range []string{srvB.URL + "/api/v3/repos/o/r/pulls/1", srvA.URL + "/api/v3/repos/o/r/pulls/1"} {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer set-by-someone-else")
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if got := b.got(); len(got) != 1 || got[0] != "" {
		t.Errorf("server B (127.0.0.1, other port) received Authorization %q, want none", got)
	}
	if rq := f.last(); rq.Auth != "Bearer "+token {
		t.Errorf("the API received Authorization %q, want the token", rq.Auth)
	}
}
