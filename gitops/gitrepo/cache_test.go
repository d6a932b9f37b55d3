package gitrepo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const appYAML = `# the web app
apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: web
spec:
  image: ghcr.io/acme/web:v1 # managed by canaryop
  replicas: 2
`

var imageLine = regexp.MustCompile(`(?m)^  image: \S+`)

// setImage is an Edit that points apps/web/app.yaml at image.
func setImage(image string) Edit {
	return func(fsys filesys.FileSystem, _ History) (EditResult, error) {
		data, err := fsys.ReadFile("apps/web/app.yaml")
		if err != nil {
			return EditResult{}, err
		}
		out := imageLine.ReplaceAll(data, []byte("  image: "+image))
		if err := fsys.WriteFile("apps/web/app.yaml", out); err != nil {
			return EditResult{}, err
		}
		return EditResult{Message: "web: set image " + image}, nil
	}
}

func newCache(t testing.TB, opts Options) *Cache {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Backoff == 0 {
		opts.Backoff = time.Millisecond
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var author = Author{Name: "canaryop", Email: "canaryop@example.com"}

func TestUpdateCommitsAndPushes(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML, "README.md": "hi\n", "other/x.yaml": "x: 1\n"})
	c := newCache(t, Options{})
	ctx := context.Background()

	res, err := c.Update(ctx, UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v2")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Branch != "main" || len(res.SHA) != 40 || strings.Join(res.Files, ",") != "apps/web/app.yaml" {
		t.Fatalf("unexpected result %+v", res)
	}
	w := g.clone("acme/apps.git")
	out := run(t, w.dir, "git", "log", "-1", "--format=%H %an <%ae> %s")
	if want := res.SHA + " canaryop <canaryop@example.com> web: set image ghcr.io/acme/web:v2"; strings.TrimSpace(out) != want {
		t.Fatalf("head is %q, want %q", out, want)
	}
	data, _ := os.ReadFile(filepath.Join(w.dir, "apps/web/app.yaml"))
	if want := strings.Replace(appYAML, "web:v1 #", "web:v2 #", 1); string(data) != strings.Replace(want, "  image: ghcr.io/acme/web:v2 #", "  image: ghcr.io/acme/web:v2 #", 1) {
		t.Fatalf("file is\n%s", data)
	}
	// The CLI agrees the history is sound and only one file changed.
	run(t, w.dir, "git", "fsck", "--strict")
	if files := strings.TrimSpace(run(t, w.dir, "git", "diff", "--name-only", "HEAD~1", "HEAD")); files != "apps/web/app.yaml" {
		t.Fatalf("changed files %q", files)
	}

	// The same edit again finds Git already holding it: no second commit.
	again, err := c.Update(ctx, UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v2")})
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.SHA != res.SHA {
		t.Fatalf("re-run made %+v, want no commit at %s", again, res.SHA)
	}
	if n := len(w.log("main")); n != 2 {
		t.Fatalf("history has %d commits, want 2", n)
	}
}

func TestUpdateFetchesIncrementally(t *testing.T) {
	g := newGitServer(t)
	other := g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	ctx := context.Background()
	req := UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author}
	for i := range 5 {
		other.commitAndPush(fmt.Sprintf("other %d", i), map[string]string{fmt.Sprintf("other/%d.txt", i): "x\n"})
		req.Edit = setImage(fmt.Sprintf("ghcr.io/acme/web:v%d", i+2))
		if _, err := c.Update(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// One clone, grown by one small pack per fetch: never cloned afresh.
	packs, _ := filepath.Glob(filepath.Join(c.Path(req.URL), "objects", "pack", "*.pack"))
	if len(packs) != 5 {
		t.Fatalf("clone has %d packs, want 5 (one initial, four incremental)", len(packs))
	}
	log := other.log("main")
	if len(log) != 11 {
		t.Fatalf("history %v", log)
	}

	// A new Cache on the same directory (an operator restart) reuses the
	// clone: the next update adds one pack instead of cloning again.
	restarted := newCache(t, Options{Dir: c.opts.Dir})
	other.commitAndPush("after restart", map[string]string{"other/restart.txt": "x\n"})
	req.Edit = setImage("ghcr.io/acme/web:restarted")
	if res, err := restarted.Update(ctx, req); err != nil || !res.Created {
		t.Fatalf("update after restart: %+v %v", res, err)
	}
	packs, _ = filepath.Glob(filepath.Join(c.Path(req.URL), "objects", "pack", "*.pack"))
	if len(packs) != 6 {
		t.Fatalf("clone has %d packs after a restart, want 6", len(packs))
	}
	log = other.log("main")

	// Past MaxPacks the clone is dropped and the next update clones again.
	small := newCache(t, Options{MaxPacks: 2})
	for i := range 3 {
		other.commitAndPush(fmt.Sprintf("more %d", i), map[string]string{fmt.Sprintf("more/%d.txt", i): "x\n"})
		req.Edit = setImage(fmt.Sprintf("ghcr.io/acme/web:w%d", i))
		if _, err := small.Update(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	packs, _ = filepath.Glob(filepath.Join(small.Path(req.URL), "objects", "pack", "*.pack"))
	if _, err := os.Stat(small.Path(req.URL)); len(packs) != 0 || !os.IsNotExist(err) {
		t.Fatalf("clone with 3 packs was kept (%d packs)", len(packs))
	}
	req.Edit = setImage("ghcr.io/acme/web:final")
	if res, err := small.Update(ctx, req); err != nil || !res.Created {
		t.Fatalf("update after compaction: %+v %v", res, err)
	}
	if log := other.log("main"); log[0] != "web: set image ghcr.io/acme/web:final" || len(log) != 20 {
		t.Fatalf("history %v", log)
	}
}

// TestConflictInjection pushes a foreign commit between our fetch and our
// push, several times for every update: each record lands exactly once and
// no foreign commit is lost.
func TestConflictInjection(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	other := g.clone("acme/apps.git")
	c := newCache(t, Options{MaxAttempts: 6})
	ctx := context.Background()

	foreign := 0
	for round := range 4 {
		image := fmt.Sprintf("ghcr.io/acme/web:v%d", round+2)
		runs := 0
		edit := setImage(image)
		res, err := c.Update(ctx, UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
			Edit: func(fsys filesys.FileSystem, _ History) (EditResult, error) {
				runs++
				if runs <= 3 {
					// Another writer lands after our fetch, before our push.
					foreign++
					other.commitAndPush(fmt.Sprintf("foreign %d", foreign), map[string]string{fmt.Sprintf("team/%d.yaml", foreign): "n: 1\n"})
				}
				return edit(fsys, nil)
			}})
		if err != nil {
			t.Fatal(err)
		}
		if runs != 4 || res.Attempts != 4 || !res.Created {
			t.Fatalf("round %d: %d edit runs, result %+v; want 4 runs and a commit on attempt 4", round, runs, res)
		}
	}
	log := other.log("main")
	for i := 1; i <= foreign; i++ {
		if n := count(log, fmt.Sprintf("foreign %d", i)); n != 1 {
			t.Fatalf("foreign %d appears %d times in %v", i, n, log)
		}
	}
	for round := range 4 {
		if n := count(log, fmt.Sprintf("web: set image ghcr.io/acme/web:v%d", round+2)); n != 1 {
			t.Fatalf("record %d appears %d times in %v", round, n, log)
		}
	}
	if len(log) != 1+foreign+4 {
		t.Fatalf("history has %d commits, want %d: %v", len(log), 1+foreign+4, log)
	}
	run(t, other.dir, "git", "pull", "-q", "--rebase", "origin", "main")
	for i := 1; i <= foreign; i++ {
		if _, err := os.Stat(filepath.Join(other.dir, fmt.Sprintf("team/%d.yaml", i))); err != nil {
			t.Fatalf("foreign file %d lost: %v", i, err)
		}
	}
}

func TestConflictGivesUpAfterMaxAttempts(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	other := g.clone("acme/apps.git")
	c := newCache(t, Options{MaxAttempts: 3})
	n := 0
	_, err := c.Update(context.Background(), UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
		Edit: func(fsys filesys.FileSystem, _ History) (EditResult, error) {
			n++
			other.commitAndPush(fmt.Sprintf("foreign %d", n), map[string]string{fmt.Sprintf("team/%d.yaml", n): "n: 1\n"})
			return setImage("ghcr.io/acme/web:v9")(fsys, nil)
		}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if n != 3 {
		t.Fatalf("edit ran %d times, want 3", n)
	}
	if log := other.log("main"); countPrefix(log, "web:") != 0 || len(log) != 4 {
		t.Fatalf("history %v", log)
	}
}

// TestConcurrentUpdatesAllLand runs many writers at once against one
// repository: from one Cache (serialised in-process) and from a second Cache
// with its own clone (serialised only by the server's compare-and-swap),
// while the git CLI pushes too.
func TestConcurrentUpdatesAllLand(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	other := g.clone("acme/apps.git")
	a := newCache(t, Options{MaxAttempts: 50})
	b := newCache(t, Options{MaxAttempts: 50})
	ctx := context.Background()

	const writers = 12
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for i := range writers {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("apps/app%d/record.yaml", i)
			_, err := c.Update(ctx, UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
				Edit: func(fsys filesys.FileSystem, _ History) (EditResult, error) {
					if err := fsys.WriteFile(name, []byte(fmt.Sprintf("writer: %d\n", i))); err != nil {
						return EditResult{}, err
					}
					return EditResult{Message: fmt.Sprintf("record %d", i)}, nil
				}})
			errs <- err
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 4 {
			other.commitAndPush(fmt.Sprintf("cli %d", i), map[string]string{fmt.Sprintf("cli/%d", i): "x\n"})
		}
		errs <- nil
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	log := other.log("main")
	for i := range writers {
		if n := count(log, fmt.Sprintf("record %d", i)); n != 1 {
			t.Fatalf("record %d appears %d times: %v", i, n, log)
		}
	}
	for i := range 4 {
		if n := count(log, fmt.Sprintf("cli %d", i)); n != 1 {
			t.Fatalf("cli %d appears %d times: %v", i, n, log)
		}
	}
	if len(log) != 1+writers+4 {
		t.Fatalf("history has %d commits: %v", len(log), log)
	}
}

func TestPushBranch(t *testing.T) {
	g := newGitServer(t)
	other := g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	ctx := context.Background()
	req := UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", PushBranch: "canaryop/default-web/rolledback-v2", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v0")}
	first, err := c.Update(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || first.Branch != req.PushBranch {
		t.Fatalf("result %+v", first)
	}
	// Main moves on; a re-run finds the change on the branch: no new commit.
	other.commitAndPush("unrelated", map[string]string{"x.txt": "x\n"})
	again, err := c.Update(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.SHA != first.SHA || again.Branch != req.PushBranch {
		t.Fatalf("re-run %+v, want the existing %s", again, first.SHA)
	}
	if log := other.log(req.PushBranch); len(log) != 2 || log[0] != "web: set image ghcr.io/acme/web:v0" {
		t.Fatalf("branch history %v", log)
	}
	if log := other.log("main"); countPrefix(log, "web:") != 0 {
		t.Fatalf("main was written: %v", log)
	}
	// Once main holds the change (the PR merged), nothing is pushed and the
	// result names main.
	other.commitAndPush("merge", map[string]string{"apps/web/app.yaml": imageLine.ReplaceAllString(appYAML, "  image: ghcr.io/acme/web:v0")})
	merged, err := c.Update(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Created || merged.Branch != "main" {
		t.Fatalf("after merge %+v", merged)
	}
}

// TestCommitHoldsTheResultOfItsRun checks that Commit.Edit is what the run of
// the Edit that SHA holds returned, however many runs the Update made.
func TestCommitHoldsTheResultOfItsRun(t *testing.T) {
	g := newGitServer(t)
	other := g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	ctx := context.Background()
	runs := 0
	set := setImage("ghcr.io/acme/web:v0")
	req := UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", PushBranch: "canaryop/default-web/rolledback-v2", Auth: g.auth(), Author: author,
		Edit: func(fsys filesys.FileSystem, h History) (EditResult, error) {
			runs++
			res, err := set(fsys, h)
			res.Value = runs
			return res, err
		}}
	for _, want := range []struct {
		created bool
		run     int
	}{
		{true, 1},  // the push branch is new: one run, on main
		{false, 3}, // main moved: a run on main changes it, the run on the branch finds it there
		{false, 4}, // merged: the run on main finds it
	} {
		if want.run == 4 {
			other.commitAndPush("merge", map[string]string{"apps/web/app.yaml": imageLine.ReplaceAllString(appYAML, "  image: ghcr.io/acme/web:v0")})
		} else if want.run == 3 {
			other.commitAndPush("unrelated", map[string]string{"x.txt": "x\n"})
		}
		res, err := c.Update(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Created != want.created || runs != want.run || res.Edit.Value != want.run || res.Edit.Message != "web: set image ghcr.io/acme/web:v0" {
			t.Fatalf("after %d runs: %+v with Edit %+v, want created %v and the result of run %d", runs, res, res.Edit, want.created, want.run)
		}
	}
}

func TestErrors(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	ctx := context.Background()
	base := UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v2")}

	t.Run("missing branch", func(t *testing.T) {
		r := base
		r.Branch = "release"
		if _, err := c.Update(ctx, r); !errors.Is(err, ErrBranchNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("edit error makes no commit", func(t *testing.T) {
		r := base
		boom := errors.New("document not found")
		r.Edit = func(fsys filesys.FileSystem, _ History) (EditResult, error) {
			_ = fsys.WriteFile("apps/web/app.yaml", []byte("half-written"))
			return EditResult{}, boom
		}
		if _, err := c.Update(ctx, r); !errors.Is(err, ErrEdit) || !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		w := g.clone("acme/apps.git")
		if log := w.log("main"); len(log) != 1 {
			t.Fatalf("history %v", log)
		}
	})
	t.Run("invalid requests", func(t *testing.T) {
		for name, mutate := range map[string]func(*UpdateRequest){
			"no url":       func(r *UpdateRequest) { r.URL = "" },
			"no branch":    func(r *UpdateRequest) { r.Branch = "" },
			"no edit":      func(r *UpdateRequest) { r.Edit = nil },
			"no author":    func(r *UpdateRequest) { r.Author = Author{} },
			"bad branch":   func(r *UpdateRequest) { r.PushBranch = "a..b" },
			"same branch":  func(r *UpdateRequest) { r.PushBranch = "main" },
			"bad protocol": func(r *UpdateRequest) { r.URL = "ftp://example.com/x.git" },
		} {
			r := base
			mutate(&r)
			if _, err := c.Update(ctx, r); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%s: err = %v", name, err)
			}
		}
	})
	t.Run("rejected by hook", func(t *testing.T) {
		hooked := newGitServer(t)
		hooked.srv.InstallUpdateHook("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
		hooked.srv.StopHTTP()
		if err := hooked.srv.StartHTTP(); err != nil {
			t.Fatal(err)
		}
		hooked.seedBypassingHook(t, "acme/apps.git", appYAML)
		r := base
		r.URL = hooked.url("acme/apps.git")
		attempts := 0
		r.Edit = func(fsys filesys.FileSystem, _ History) (EditResult, error) {
			attempts++
			return setImage("ghcr.io/acme/web:v2")(fsys, nil)
		}
		_, err := c.Update(ctx, r)
		var rej *RejectedError
		if !errors.As(err, &rej) || attempts != 1 || !strings.Contains(rej.Reason, "declined") {
			t.Fatalf("err = %v after %d edits, want a RejectedError without a retry (the branch did not move)", err, attempts)
		}
	})
}

// seedBypassingHook writes the repository straight into the server's root,
// since the update hook refuses every push.
func (g *gitServer) seedBypassingHook(t *testing.T, repo, app string) {
	dir := filepath.Join(g.srv.Root(), repo)
	w := t.TempDir()
	run(t, w, "git", "init", "-q", "-b", "main")
	if err := os.MkdirAll(filepath.Join(w, "apps/web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w, "apps/web/app.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, w, "git", "add", "-A")
	run(t, w, "git", "commit", "-q", "-m", "seed")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Dir(dir), "git", "clone", "-q", "--bare", w, dir)
	hooks := filepath.Join(dir, "hooks")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hooks, "update"), []byte("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialsNeverLeak plants a token and checks every error and every
// printed form of the credentials.
func TestCredentialsNeverLeak(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	ctx := context.Background()
	const planted = "ghp_PLANTEDsecretTOKEN0123456789"

	cases := map[string]UpdateRequest{
		"wrong token": {URL: g.url("acme/apps.git"), Auth: Auth{Username: testUser, Password: planted}},
		"token in URL": {URL: strings.Replace(g.url("acme/apps.git"), "http://", "http://"+testUser+":"+planted+"@", 1),
			Auth: Auth{Username: testUser, Password: planted}},
		"token as URL user": {URL: strings.Replace(g.url("acme/apps.git"), "http://", "http://"+planted+"@", 1)},
		"missing repo":      {URL: g.url("acme/nope.git"), Auth: Auth{Username: testUser, Password: planted}},
		"unreachable host":  {URL: "http://" + testUser + ":" + planted + "@127.0.0.1:1/acme/apps.git", Auth: Auth{Username: testUser, Password: planted}},
	}
	for name, r := range cases {
		r.Branch, r.Author, r.Edit = "main", author, setImage("ghcr.io/acme/web:v2")
		_, err := c.Update(ctx, r)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		for _, form := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", r.Auth), fmt.Sprintf("%v", r.Auth), fmt.Sprintf("%+v", r)} {
			if strings.Contains(form, planted) {
				t.Fatalf("%s: token leaked in %q", name, form)
			}
		}
		if name == "wrong token" && !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong token: err = %v, want ErrAuth", err)
		}
	}
	if got := SanitizeURL("https://user:" + planted + "@github.com/acme/apps.git"); got != "https://github.com/acme/apps.git" {
		t.Fatalf("SanitizeURL = %q", got)
	}
}

func TestSSH(t *testing.T) {
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(srv.Root()) })
	keyDir := t.TempDir()
	srv.KeyDir(keyDir).AutoCreate()
	srv.Auth(testUser, testToken) // turns on public key checks for SSH

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	allowed := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	srv.PublicKeyLookupFunc(func(content string) (*gitkit.PublicKey, error) {
		if content != allowed {
			return nil, errors.New("unknown key")
		}
		return &gitkit.PublicKey{Id: "canaryop"}, nil
	})
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	if err := srv.ListenSSH(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.StartSSH() }()
	t.Cleanup(func() { _ = srv.StopSSH() })

	g := &gitServer{srv: srv, t: t}
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})

	hostPub, err := os.ReadFile(filepath.Join(keyDir, "gitkit.rsa.pub"))
	if err != nil {
		entries, _ := os.ReadDir(keyDir)
		t.Fatalf("host key: %v (%v)", err, entries)
	}
	addr := strings.TrimPrefix(srv.SSHAddress(), "ssh://git@")
	host, port, _ := strings.Cut(addr, ":")
	knownHosts := fmt.Sprintf("[%s]:%s %s", host, port, hostPub)
	keyPEM := pemEncode(block)

	c := newCache(t, Options{})
	ctx := context.Background()
	url := srv.SSHAddress() + "/acme/apps.git"
	res, err := c.Update(ctx, UpdateRequest{URL: url, Branch: "main", Author: author, Edit: setImage("ghcr.io/acme/web:v2"),
		Auth: Auth{SSHPrivateKey: keyPEM, KnownHosts: []byte(knownHosts)}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created {
		t.Fatalf("result %+v", res)
	}
	if log := g.clone("acme/apps.git").log("main"); log[0] != "web: set image ghcr.io/acme/web:v2" {
		t.Fatalf("history %v", log)
	}

	// A host key that known_hosts does not hold is refused.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherSSH, _ := ssh.NewPublicKey(otherPub)
	wrong := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(otherSSH))
	_, err = c.Update(ctx, UpdateRequest{URL: url, Branch: "main", Author: author, Edit: setImage("ghcr.io/acme/web:v3"),
		Auth: Auth{SSHPrivateKey: keyPEM, KnownHosts: []byte(wrong)}})
	if err == nil {
		t.Fatal("unknown host key accepted")
	}
	if strings.Contains(err.Error(), "OPENSSH PRIVATE KEY") {
		t.Fatalf("key leaked: %v", err)
	}
	// SSH without known_hosts is refused before dialling.
	_, err = c.Update(ctx, UpdateRequest{URL: url, Branch: "main", Author: author, Edit: setImage("ghcr.io/acme/web:v3"),
		Auth: Auth{SSHPrivateKey: keyPEM}})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}

func TestHistoryChangedSince(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"README.md": "x\n"})
	w := g.clone("acme/apps.git")
	w.commitAt("2020-01-01T00:00:00Z", "a", map[string]string{"apps/web/app.yaml": appYAML})
	w.commitAt("2021-01-01T00:00:00Z", "b", map[string]string{"other/x.yaml": "x: 1\n"})
	w.commitAt("2022-01-01T00:00:00Z", "c", map[string]string{"apps/web/app.yaml": appYAML + "# more\n"})
	date := func(s string) time.Time { d, _ := time.Parse(time.RFC3339, s); return d }
	cases := []struct {
		path, since string
		want        bool
	}{
		{"apps/web", "2021-06-01T00:00:00Z", true},
		{"apps/web/app.yaml", "2021-06-01T00:00:00Z", true},
		{"apps/web", "2022-06-01T00:00:00Z", false},
		{"other", "2021-06-01T00:00:00Z", false},
		{"other", "2020-06-01T00:00:00Z", true},
		{"missing", "2000-01-01T00:00:00Z", false},
	}
	c := newCache(t, Options{})
	_, err := c.Update(context.Background(), UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
		Edit: func(_ filesys.FileSystem, h History) (EditResult, error) {
			for _, tc := range cases {
				got, err := h.ChangedSince(tc.path, date(tc.since))
				if err != nil {
					return EditResult{}, err
				}
				if got != tc.want {
					t.Errorf("ChangedSince(%s, %s) = %v, want %v", tc.path, tc.since, got, tc.want)
				}
			}
			return EditResult{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEmptyRemote(t *testing.T) {
	g := newGitServer(t)
	dir := filepath.Join(g.srv.Root(), "acme/empty.git")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "git", "init", "-q", "--bare")
	c := newCache(t, Options{})
	_, err := c.Update(context.Background(), UpdateRequest{URL: g.url("acme/empty.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("x:v1")})
	if !errors.Is(err, ErrBranchNotFound) {
		t.Fatalf("err = %v, want ErrBranchNotFound", err)
	}
	_, err = c.Update(context.Background(), UpdateRequest{URL: g.url("acme/absent.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("x:v1")})
	if err == nil {
		t.Fatal("absent repository: no error")
	}
}
