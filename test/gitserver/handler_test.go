package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testUser  = "demo"
	testToken = "s3cret-token"
)

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	// Keep the developer's git config and credential helpers out of the test.
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func gitCmdErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newServer serves a fresh project root holding one bare repository with one
// commit, and returns the server and the repository's clone URL without credentials.
func newServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root := t.TempDir()
	bare := filepath.Join(root, "demo.git")
	gitCmd(t, root, "init", "-q", "--bare", "-b", "main", bare)
	seed := t.TempDir()
	gitCmd(t, seed, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(seed, "app.yaml"), []byte("image: v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, seed, "add", ".")
	gitCmd(t, seed, "commit", "-q", "-m", "seed")
	gitCmd(t, seed, "push", "-q", bare, "main")

	h, err := NewHandler(Config{ProjectRoot: root, User: testUser, Token: testToken}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.URL + "/demo.git"
}

func withCreds(t *testing.T, raw, user, pass string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

func TestCloneAndPushWithCredentials(t *testing.T) {
	_, repoURL := newServer(t)
	authed := withCreds(t, repoURL, testUser, testToken)

	work := filepath.Join(t.TempDir(), "clone")
	gitCmd(t, "", "clone", "-q", authed, work)
	if got, err := os.ReadFile(filepath.Join(work, "app.yaml")); err != nil || string(got) != "image: v1\n" {
		t.Fatalf("cloned app.yaml = %q, %v; want the seeded content", got, err)
	}

	if err := os.WriteFile(filepath.Join(work, "app.yaml"), []byte("image: v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, work, "commit", "-q", "-am", "bump to v2")
	pushed := gitCmd(t, work, "rev-parse", "HEAD")
	gitCmd(t, work, "push", "-q", "origin", "main")

	// A second, independent clone sees the pushed commit: the push reached the server.
	again := filepath.Join(t.TempDir(), "again")
	gitCmd(t, "", "clone", "-q", authed, again)
	if got := gitCmd(t, again, "rev-parse", "HEAD"); got != pushed {
		t.Fatalf("HEAD after push = %s, want %s", got, pushed)
	}
}

func TestRejectsMissingOrWrongCredentials(t *testing.T) {
	srv, repoURL := newServer(t)
	infoRefs := "/demo.git/info/refs?service=git-upload-pack"

	cases := map[string]func(*http.Request){
		"no credentials": func(*http.Request) {},
		"wrong token":    func(r *http.Request) { r.SetBasicAuth(testUser, "nope") },
		"wrong user":     func(r *http.Request) { r.SetBasicAuth("other", testToken) },
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+infoRefs, nil)
			if err != nil {
				t.Fatal(err)
			}
			set(req)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate: git would not retry with credentials")
			}
		})
	}

	out, err := gitCmdErr("", "clone", "-q", withCreds(t, repoURL, testUser, "nope"), filepath.Join(t.TempDir(), "c"))
	if err == nil {
		t.Fatalf("clone with a wrong token succeeded:\n%s", out)
	}
	if strings.Contains(out, testToken) {
		t.Fatal("git output contains the server's token")
	}
}

func TestNewHandlerRejectsIncompleteConfig(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]Config{
		"no root":      {User: "u", Token: "t"},
		"no user":      {ProjectRoot: dir, Token: "t"},
		"no token":     {ProjectRoot: dir, User: "u"},
		"missing root": {ProjectRoot: filepath.Join(dir, "absent"), User: "u", Token: "t"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewHandler(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
				t.Fatal("NewHandler accepted an incomplete config")
			}
		})
	}
}
