package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const token = "ghp_s3cretT0kenValue1234567890"

var repo = Repo{Owner: "o", Name: "r"}

func newClient(t *testing.T, srvURL, tok string) *Client {
	t.Helper()
	c, err := New(nil, srvURL+"/api/v3/", tok)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func rollbackRequest() Request {
	return Request{
		Repo:   repo,
		Head:   "canaryop/default/canaryapp-sample/rollback",
		Base:   "main",
		Title:  "canaryapp default/canaryapp-sample: roll back to :v2, :v3 failed analysis",
		Body:   "## Canary rolled back\n\n| a | b |",
		Labels: []string{"canaryop", "rollback"},
	}
}

func assertCalls(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func assertNoToken(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), token) {
		t.Errorf("error contains the token: %v", err)
	}
}

func TestEnsureCreatesPullRequestWithLabels(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	r := rollbackRequest()

	pr, err := c.Ensure(context.Background(), r)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	want := PR{Number: 1, URL: "https://github.example/o/r/pull/1", State: StateOpen}
	if pr != want {
		t.Errorf("PR = %+v, want %+v", pr, want)
	}
	reqs := f.all()
	assertCalls(t, f.calls(), []string{
		"POST /api/v3/repos/o/r/pulls",
		"POST /api/v3/repos/o/r/issues/1/labels",
	})
	for _, rq := range reqs {
		if rq.Auth != "Bearer "+token {
			t.Errorf("%s: Authorization = %q", rq, rq.Auth)
		}
	}
	var create map[string]any
	if err := json.Unmarshal(reqs[0].Body, &create); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"title": r.Title, "head": r.Head, "base": r.Base, "body": r.Body} {
		if create[k] != v {
			t.Errorf("create body %s = %v, want %q", k, create[k], v)
		}
	}
	var labels []string
	if err := json.Unmarshal(reqs[1].Body, &labels); err != nil || !slices.Equal(labels, r.Labels) {
		t.Errorf("labels body = %s, want %q", reqs[1].Body, r.Labels)
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	r := rollbackRequest()
	first, err := c.Ensure(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	f.calls()

	second, err := c.Ensure(context.Background(), r)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if second != first {
		t.Errorf("second Ensure = %+v, want the same PR %+v", second, first)
	}
	// GitHub refuses a second PR for the same head (422); the open one is
	// found by head owner:branch and, being up to date, left alone.
	assertCalls(t, f.calls(), []string{
		"POST /api/v3/repos/o/r/pulls",
		"GET /api/v3/repos/o/r/pulls?base=main&head=o:canaryop/default/canaryapp-sample/rollback&state=open",
	})
	if len(f.prs) != 1 {
		t.Errorf("fake holds %d pull requests, want 1", len(f.prs))
	}
}

func TestEnsureUpdatesExistingPullRequest(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	r := rollbackRequest()
	if _, err := c.Ensure(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	f.calls()

	r.Title = "canaryapp default/canaryapp-sample: roll back to :v2, :v4 failed analysis"
	r.Body = "new body"
	r.Labels = []string{"canaryop", "rollback", "urgent", "urgent", ""}
	pr, err := c.Ensure(context.Background(), r)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if pr.Number != 1 || pr.State != StateOpen {
		t.Errorf("PR = %+v, want #1 open", pr)
	}
	reqs := f.all()
	assertCalls(t, f.calls(), []string{
		"POST /api/v3/repos/o/r/pulls",
		"GET /api/v3/repos/o/r/pulls?base=main&head=o:canaryop/default/canaryapp-sample/rollback&state=open",
		"PATCH /api/v3/repos/o/r/pulls/1",
		"POST /api/v3/repos/o/r/issues/1/labels",
	})
	var patch map[string]any
	if err := json.Unmarshal(reqs[2].Body, &patch); err != nil {
		t.Fatal(err)
	}
	if patch["title"] != r.Title || patch["body"] != r.Body {
		t.Errorf("PATCH body = %s", reqs[2].Body)
	}
	if _, ok := patch["base"]; ok {
		t.Errorf("PATCH must not move the base branch: %s", reqs[2].Body)
	}
	if got := string(reqs[3].Body); strings.TrimSpace(got) != `["urgent"]` {
		t.Errorf("labels body = %s, want only the missing label", got)
	}
	if p := f.prs[0]; p.Title != r.Title || p.Body != r.Body {
		t.Errorf("fake PR = %+v", p)
	}
}

func TestEnsureForkHeadListsByGivenOwner(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	r := rollbackRequest()
	r.Head = "fork:canaryop/x"
	r.Labels = nil
	if _, err := c.Ensure(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ensure(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	assertCalls(t, f.calls(), []string{
		"POST /api/v3/repos/o/r/pulls",
		"POST /api/v3/repos/o/r/pulls",
		"GET /api/v3/repos/o/r/pulls?base=main&head=fork:canaryop/x&state=open",
	})
}

func TestEnsureAlreadyExistsButNoneOpen(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	f.fail["POST /api/v3/repos/o/r/pulls"] = failure{
		status:  http.StatusUnprocessableEntity,
		message: "Validation Failed",
		errors:  []map[string]string{{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for o:b."}},
	}
	_, err := c.Ensure(context.Background(), Request{Repo: repo, Head: "b", Base: "main", Title: "t"})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
	assertCalls(t, f.calls(), []string{
		"POST /api/v3/repos/o/r/pulls",
		"GET /api/v3/repos/o/r/pulls?base=main&head=o:b&state=open",
	})
}

func TestEnsureErrors(t *testing.T) {
	tests := []struct {
		name      string
		token     string // token the client sends
		repo      Repo
		fail      *failure
		wantErr   error
		wantInMsg string
		wantCalls []string
	}{
		{
			name: "401 bad credentials", token: "ghp_wrong" + token, repo: repo,
			wantErr: ErrAuth, wantInMsg: "HTTP 401",
			wantCalls: []string{"POST /api/v3/repos/o/r/pulls"},
		},
		{
			name: "403 token lacks permission", token: token, repo: repo,
			fail:    &failure{status: http.StatusForbidden, message: "Resource not accessible by personal access token " + token},
			wantErr: ErrAuth, wantInMsg: "Resource not accessible",
			wantCalls: []string{"POST /api/v3/repos/o/r/pulls"},
		},
		{
			name: "403 rate limit", token: token, repo: repo,
			fail: &failure{status: http.StatusForbidden, message: "API rate limit exceeded",
				header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}},
			wantErr: ErrRateLimited, wantInMsg: "rate limit",
			wantCalls: []string{"POST /api/v3/repos/o/r/pulls"},
		},
		{
			name: "404 unknown repository", token: token, repo: Repo{Owner: "o", Name: "missing"},
			wantErr: ErrNotFound, wantInMsg: "HTTP 404",
			wantCalls: []string{"POST /api/v3/repos/o/missing/pulls"},
		},
		{
			name: "422 other than already exists", token: token, repo: repo,
			fail: &failure{status: http.StatusUnprocessableEntity, message: "Validation Failed",
				errors: []map[string]string{{"resource": "PullRequest", "code": "custom", "message": "No commits between main and b"}}},
			wantErr: ErrRejected, wantInMsg: "No commits between main and b",
			wantCalls: []string{"POST /api/v3/repos/o/r/pulls"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t, token)
			if tt.fail != nil {
				f.fail["POST /api/v3/repos/o/r/pulls"] = *tt.fail
			}
			c := newClient(t, srv.URL, tt.token)
			_, err := c.Ensure(context.Background(), Request{Repo: tt.repo, Head: "b", Base: "main", Title: "t", Labels: []string{"x"}})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var ge *Error
			if !errors.As(err, &ge) {
				t.Errorf("err %T is not *Error", err)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantInMsg)
			}
			assertNoToken(t, err)
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("error contains the sent token: %v", err)
			}
			assertCalls(t, f.calls(), tt.wantCalls)
		})
	}
}

func TestErrorRedactsEchoedToken(t *testing.T) {
	// The fake echoes the Authorization header it got in its 401 message.
	_, srv := newFake(t, "other")
	c := newClient(t, srv.URL, token)
	_, err := c.Get(context.Background(), repo, 1)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if !strings.Contains(err.Error(), "Bearer [redacted]") {
		t.Errorf("err = %q, want the echoed header redacted", err)
	}
	assertNoToken(t, err)
}

func TestTransportErrorHasNoToken(t *testing.T) {
	_, srv := newFake(t, token)
	url := srv.URL
	srv.Close()
	c := newClient(t, url, token)
	_, err := c.Ensure(context.Background(), rollbackRequest())
	if err == nil {
		t.Fatal("Ensure against a closed server succeeded")
	}
	assertNoToken(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Get(ctx, repo, 1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestGetStates(t *testing.T) {
	f, srv := newFake(t, token)
	f.prs = []*fakePR{
		{Number: 1, Head: "o:a", Base: "main", State: "open"},
		{Number: 2, Head: "o:b", Base: "main", State: "closed", Merged: true},
		{Number: 3, Head: "o:c", Base: "main", State: "closed"},
	}
	c := newClient(t, srv.URL, token)
	for n, want := range map[int]string{1: StateOpen, 2: StateMerged, 3: StateClosed} {
		pr, err := c.Get(context.Background(), repo, n)
		if err != nil {
			t.Fatalf("Get #%d: %v", n, err)
		}
		if pr.State != want || pr.Number != n {
			t.Errorf("Get #%d = %+v, want state %s", n, pr, want)
		}
		rq := f.last()
		if rq.Method != http.MethodGet || rq.Auth != "Bearer "+token {
			t.Errorf("request = %s with %q", rq, rq.Auth)
		}
	}
	_, err := c.Get(context.Background(), repo, 99)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Get #99: err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "o/r#99") {
		t.Errorf("err = %q, want it to name the pull request", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	_, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	for _, r := range []Request{
		{Repo: Repo{Owner: "o/x", Name: "r"}, Head: "b", Base: "main"},
		{Repo: Repo{Owner: "o", Name: ""}, Head: "b", Base: "main"},
		{Repo: repo, Head: "", Base: "main"},
		{Repo: repo, Head: "b", Base: ""},
	} {
		if _, err := c.Ensure(context.Background(), r); err == nil {
			t.Errorf("Ensure(%+v) succeeded", r)
		}
	}
	if _, err := c.Get(context.Background(), Repo{Owner: "..", Name: "r"}, 1); !errors.Is(err, ErrInvalidRepo) {
		t.Errorf("Get with owner '..': err = %v, want ErrInvalidRepo", err)
	}
}

func TestNew(t *testing.T) {
	hc := &http.Client{}
	c, err := New(hc, "", token)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.String(); got != "https://api.github.com/" {
		t.Errorf("default base URL = %s", got)
	}
	if hc.Transport != nil {
		t.Errorf("New modified the caller's http.Client")
	}

	c, err = New(nil, "https://ghe.example.com", token)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.String(); got != "https://ghe.example.com/api/v3/" {
		t.Errorf("enterprise base URL = %s", got)
	}

	for _, bad := range []string{"ghe.example.com", "ftp://ghe.example.com/", "https://" + token + "@/x", "://"} {
		_, err := New(nil, bad, token)
		if err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
		assertNoToken(t, err)
	}
}

func TestParseRepo(t *testing.T) {
	tests := []struct {
		url  string
		want Repo
		ok   bool
	}{
		{"https://github.com/o/r", Repo{"o", "r"}, true},
		{"https://github.com/o/r.git", Repo{"o", "r"}, true},
		{"https://github.com/o/r/", Repo{"o", "r"}, true},
		{"http://ghe.example.com:8080/team-a/app.config.git", Repo{"team-a", "app.config"}, true},
		{"https://x-access-token:" + token + "@github.com/o/r.git", Repo{"o", "r"}, true},
		{"git@github.com:o/r.git", Repo{"o", "r"}, true},
		{"github.com:o/r", Repo{"o", "r"}, true},
		{"ssh://git@github.com/o/r", Repo{"o", "r"}, true},
		{"ssh://git@ghe.example.com:2222/o/r.git", Repo{"o", "r"}, true},
		{"  https://github.com/O_1/R-2  ", Repo{"O_1", "R-2"}, true},
		{"https://github.com/o", Repo{}, false},
		{"https://github.com/o/r/tree/main", Repo{}, false},
		{"https://github.com//r", Repo{}, false},
		{"https://github.com/o/../r", Repo{}, false},
		{"file:///tmp/o/r", Repo{}, false},
		{"/tmp/o/r", Repo{}, false},
		{"git@github.com", Repo{}, false},
		{"", Repo{}, false},
		{"https://" + token + "@github.com/only-owner", Repo{}, false},
		{token + "@github.com:o", Repo{}, false},
		// Not normalised but refused: the Git client, the credential
		// lookup and GitHub could each read these differently.
		{"https://github.com//o/r", Repo{}, false},
		{"https://github.com/o//r", Repo{}, false},
		{"https://github.com/o/r//", Repo{}, false},
		{"https://github.com/./o/r", Repo{}, false},
		{"https://github.com/o/./r", Repo{}, false},
		{"https://github.com/o/r/..", Repo{}, false},
		{"https://github.com/x/../o/r", Repo{}, false},
		{"https://github.com/%2e%2e/r", Repo{}, false},
		{"https://github.com/o/%2e%2e", Repo{}, false},
		{"https://github.com/ow%6eer/r", Repo{}, false},
		{"https://github.com/o%2Fx/r", Repo{}, false},
		{"https://github.com/o\\r", Repo{}, false},
		{"https://github.com/o/r\\", Repo{}, false},
		{"git@github.com:o\\r", Repo{}, false},
		{"git@github.com:o/%72", Repo{}, false},
		{"git@github.com://o/r", Repo{}, false},
		{"git@git hub.com:o/r", Repo{}, false},
		{"https://github.com/o/r?x=1", Repo{}, false},
		{"https://github.com/o/r?", Repo{}, false},
		{"https://github.com/o/r#main", Repo{}, false},
		{"https://github.com/o/" + strings.Repeat("r", 101), Repo{}, false},
		{"https://github.com/o/r x", Repo{}, false},
		{"https://github.com/o/r\u202e", Repo{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseRepo(tt.url)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseRepo(%q) = %+v, %v; want ok=%v", tt.url, got, err, tt.ok)
			}
			if got != tt.want {
				t.Errorf("ParseRepo(%q) = %+v, want %+v", tt.url, got, tt.want)
			}
			if err != nil && !errors.Is(err, ErrInvalidRepo) {
				t.Errorf("err = %v, want ErrInvalidRepo", err)
			}
			assertNoToken(t, err)
		})
	}
}

func FuzzParseRepo(f *testing.F) {
	for _, s := range []string{"https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@h:22/o/r", "https://" + token + "@h/o"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRepo(s)
		if err != nil {
			if strings.Contains(s, "@") {
				user := s[:strings.LastIndex(s, "@")]
				if i := strings.Index(user, "://"); i >= 0 {
					user = user[i+3:]
				}
				if len(user) > 8 && !strings.ContainsAny(user, "/:?#") && strings.Contains(err.Error(), user+"@") {
					t.Errorf("error %q repeats the user information %q", err, user)
				}
			}
			return
		}
		if r.validate() != nil {
			t.Errorf("ParseRepo(%q) = %+v, an invalid Repo", s, r)
		}
		if rf, err := ParseRepoFor("", s); err == nil && rf != r {
			t.Errorf("ParseRepoFor(%q) = %+v, ParseRepo = %+v", s, rf, r)
		}
	})
}

// Close closes only an open pull request of the branch it names: a number
// that names another pull request (another team's, or a merged one) is
// left alone.
func TestCloseOnlyTheBranchsOpenPullRequest(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	r := rollbackRequest()
	own, err := c.Ensure(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	other := r
	other.Head = "canaryop/team-b/pay/approvalrequested-x"
	theirs, err := c.Ensure(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := c.Close(context.Background(), repo, theirs.Number, r.Head, "superseded")
	if err != nil || closed {
		t.Fatalf("closing another branch's pull request: closed %v, err %v", closed, err)
	}
	closed, err = c.Close(context.Background(), repo, own.Number, r.Head, "superseded: the canary was rolled back")
	if err != nil || !closed {
		t.Fatalf("Close: closed %v, err %v", closed, err)
	}
	if f.prs[0].State != StateClosed || f.prs[1].State != StateOpen {
		t.Errorf("states %s, %s; want closed, open", f.prs[0].State, f.prs[1].State)
	}
	if got := f.prs[0].Comments; len(got) != 1 || got[0] != "superseded: the canary was rolled back" {
		t.Errorf("comments %v", got)
	}
	if got, _ := c.Get(context.Background(), repo, own.Number); got.State != StateClosed {
		t.Errorf("Get after Close: %s (a stale cached answer?)", got.State)
	}
	f.calls() // calls() resets the record
	if closed, err = c.Close(context.Background(), repo, own.Number, r.Head, "again"); err != nil || closed {
		t.Errorf("closing a closed pull request: closed %v, err %v", closed, err)
	}
	if calls := f.calls(); len(calls) != 1 || !strings.HasPrefix(calls[0], "GET ") {
		t.Errorf("requests closing a closed pull request: %v, want one GET", calls)
	}
}
