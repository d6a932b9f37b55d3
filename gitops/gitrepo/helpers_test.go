package gitrepo

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atzedevries/canaryop/internal/testgit"
	"github.com/fluxcd/pkg/gittestserver"
)

const (
	testUser  = "canaryop"
	testToken = "tok-PLANTED-4f1c9e2a7b"
)

// gitServer is a real Git server over smart HTTP (git http-backend style, the
// git CLI's upload-pack and receive-pack behind it) with basic auth.
type gitServer struct {
	srv *gittestserver.GitServer
	t   testing.TB
}

func TestMain(m *testing.M) {
	// The test server logs every request through the standard logger.
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

func newGitServer(t testing.TB) *gitServer {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	srv.Auth(testUser, testToken).AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.StopHTTP()
		_ = os.RemoveAll(srv.Root())
	})
	return &gitServer{srv: srv, t: t}
}

// url is the repository URL without credentials.
func (g *gitServer) url(repo string) string { return g.srv.HTTPAddress() + "/" + repo }

// credURL carries the credentials, for the test's own git CLI only.
func (g *gitServer) credURL(repo string) string {
	return g.srv.HTTPAddressWithCredentials() + "/" + repo
}

func (g *gitServer) auth() Auth { return Auth{Username: testUser, Password: testToken} }

// seed creates a repository with the given files on branch main.
func (g *gitServer) seed(repo string, files map[string]string) *workClone {
	g.t.Helper()
	dir := g.t.TempDir()
	run(g.t, dir, "git", "init", "-q", "-b", "main")
	w := &workClone{t: g.t, dir: dir}
	w.write(files)
	run(g.t, dir, "git", "add", "-A")
	run(g.t, dir, "git", "commit", "-q", "-m", "seed")
	run(g.t, dir, "git", "remote", "add", "origin", g.credURL(repo))
	run(g.t, dir, "git", "push", "-q", "origin", "main")
	return w
}

// clone makes a work-tree clone with the git CLI: the "other writer".
func (g *gitServer) clone(repo string) *workClone {
	g.t.Helper()
	dir := g.t.TempDir()
	run(g.t, filepath.Dir(dir), "git", "clone", "-q", "-b", "main", g.credURL(repo), dir)
	return &workClone{t: g.t, dir: dir}
}

type workClone struct {
	t   testing.TB
	dir string
}

func (w *workClone) write(files map[string]string) {
	w.t.Helper()
	for name, content := range files {
		p := filepath.Join(w.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
}

// commitAndPush pulls, writes the files, commits and pushes, as a person or
// another tool would.
func (w *workClone) commitAndPush(msg string, files map[string]string) {
	w.t.Helper()
	run(w.t, w.dir, "git", "pull", "-q", "--rebase", "origin", "main")
	w.write(files)
	run(w.t, w.dir, "git", "add", "-A")
	run(w.t, w.dir, "git", "commit", "-q", "-m", msg)
	for range 50 {
		// Like a person, retry when someone else pushed first.
		if tryRun(w.dir, "git", "push", "-q", "origin", "HEAD:main") == nil {
			return
		}
		run(w.t, w.dir, "git", "pull", "-q", "--rebase", "origin", "main")
	}
	w.t.Fatalf("push of %q kept failing", msg)
}

// log returns the subjects on branch main of the remote, newest first.
func (w *workClone) log(branch string) []string {
	w.t.Helper()
	run(w.t, w.dir, "git", "fetch", "-q", "origin")
	out := run(w.t, w.dir, "git", "log", "--format=%s", "origin/"+branch)
	return strings.Split(strings.TrimSpace(out), "\n")
}

func (w *workClone) show(rev string) string {
	w.t.Helper()
	run(w.t, w.dir, "git", "fetch", "-q", "origin")
	return run(w.t, w.dir, "git", "show", rev)
}

func tryRun(dir string, name string, args ...string) error {
	cmd := gitCmd(dir, name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := gitCmd(dir, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func gitCmd(dir string, name string, args ...string) *exec.Cmd {
	return testgit.Command(dir, "Other Writer", "other@example.com", name, args...)
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, x := range list {
		if strings.HasPrefix(x, prefix) {
			n++
		}
	}
	return n
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

// commitAt commits files with the given committer date and pushes.
func (w *workClone) commitAt(date, msg string, files map[string]string) {
	w.t.Helper()
	w.write(files)
	run(w.t, w.dir, "git", "add", "-A")
	cmd := gitCmd(w.dir, "git", "commit", "-q", "-m", msg)
	cmd.Env = append(cmd.Env, "GIT_COMMITTER_DATE="+date, "GIT_AUTHOR_DATE="+date)
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("commit: %v\n%s", err, out)
	}
	run(w.t, w.dir, "git", "push", "-q", "origin", "HEAD:main")
}
