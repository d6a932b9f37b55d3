package github

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestSetStatusPostsOnTheCommit(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	long := strings.Repeat("é", 200)
	for _, s := range []Status{
		{State: StatusPending, Context: "canaryop/canary/team-a/shop", Description: "canary :v2 at 25%"},
		{State: StatusSuccess, Context: "canaryop/canary/team-a/shop", Description: long},
	} {
		if err := c.SetStatus(context.Background(), repo, sha, s); err != nil {
			t.Fatalf("SetStatus(%s): %v", s.State, err)
		}
	}
	assertCalls(t, f.calls(), []string{"POST /api/v3/repos/o/r/statuses/" + sha, "POST /api/v3/repos/o/r/statuses/" + sha})
	for _, rq := range f.all() {
		if rq.Auth != "Bearer "+token {
			t.Errorf("%s: Authorization = %q", rq, rq.Auth)
		}
	}
	want := sha + " pending canaryop/canary/team-a/shop canary :v2 at 25%"
	if f.statuses[0] != want {
		t.Errorf("first status %q, want %q", f.statuses[0], want)
	}
	desc := strings.TrimPrefix(f.statuses[1], sha+" success canaryop/canary/team-a/shop ")
	if n := len([]rune(desc)); n != MaxStatusDescription || !strings.HasSuffix(desc, "...") {
		t.Errorf("description of %d runes %q, want it cut to %d", n, desc, MaxStatusDescription)
	}
}

func TestSetStatusRefusesBeforeSending(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	for name, call := range map[string]func() error{
		"short sha": func() error {
			return c.SetStatus(context.Background(), repo, "0123abc", Status{State: StatusPending, Context: "x"})
		},
		"sha with path": func() error {
			return c.SetStatus(context.Background(), repo, "../pulls/"+sha[9:], Status{State: StatusPending, Context: "x"})
		},
		"unknown state": func() error {
			return c.SetStatus(context.Background(), repo, sha, Status{State: "green", Context: "x"})
		},
		"no context": func() error { return c.SetStatus(context.Background(), repo, sha, Status{State: StatusPending}) },
		"bad repo": func() error {
			return c.SetStatus(context.Background(), Repo{Owner: "o/../x", Name: "r"}, sha, Status{State: StatusPending, Context: "x"})
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := len(f.calls()); n != 0 {
		t.Errorf("%d requests sent, want none: %v", n, f.calls())
	}
}

// GitHub's answer to a refused status is not repeated beyond its status
// and documented message, and never with the token.
func TestSetStatusErrorsAreTyped(t *testing.T) {
	f, srv := newFake(t, token)
	c := newClient(t, srv.URL, token)
	f.fail = map[string]failure{"POST /api/v3/repos/o/r/statuses/" + sha: {status: http.StatusUnprocessableEntity, message: "No commit found for SHA: " + sha}}
	err := c.SetStatus(context.Background(), repo, sha, Status{State: StatusFailure, Context: "x"})
	if !errors.Is(err, ErrRejected) {
		t.Errorf("err = %v, want ErrRejected", err)
	}
	bad := newClient(t, srv.URL, "ghp_wrong"+token)
	err = bad.SetStatus(context.Background(), repo, sha, Status{State: StatusFailure, Context: "x"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("err = %v, want ErrAuth", err)
	}
	assertNoToken(t, err)
	if strings.Contains(err.Error(), "ghp_wrong") {
		t.Errorf("error repeats the token GitHub echoed: %v", err)
	}
}
