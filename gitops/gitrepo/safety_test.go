package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestUpdateDoesNotReadLargeFiles writes back next to a 50 MiB file at the
// repository root: once the clone exists, an Update allocates far less than
// the file, and the commit changes only the manifest.
func TestUpdateDoesNotReadLargeFiles(t *testing.T) {
	g := newGitServer(t)
	large := make([]byte, 50<<20)
	copy(large, "large file\n")
	g.seedBare("acme/apps.git", map[string][]byte{"apps/web/app.yaml": []byte(appYAML), "large.bin": large})
	c := newCache(t, Options{})
	ctx := context.Background()
	req := UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v2")}
	if _, err := c.Update(ctx, req); err != nil {
		t.Fatal(err)
	}
	req.Edit = setImage("ghcr.io/acme/web:v3")
	var res Commit
	var err error
	n := allocated(func() { res, err = c.Update(ctx, req) })
	if err != nil || !res.Created {
		t.Fatalf("%+v %v", res, err)
	}
	t.Logf("second write-back allocated %.1f MiB", float64(n)/(1<<20))
	if n > 8<<20 {
		t.Fatalf("a write-back next to a 50 MiB file allocated %d MiB", n>>20)
	}
	dir := t.TempDir()
	run(t, dir, "git", "clone", "-q", "--bare", g.credURL("acme/apps.git"), "check.git")
	bare := filepath.Join(dir, "check.git")
	run(t, bare, "git", "fsck", "--strict")
	if files := strings.TrimSpace(run(t, bare, "git", "diff", "--name-only", "main~2", "main")); files != "apps/web/app.yaml" {
		t.Fatalf("the write-backs changed %q", files)
	}
	if got, want := run(t, bare, "git", "rev-parse", "main:large.bin"), run(t, bare, "git", "rev-parse", "main~2:large.bin"); got != want {
		t.Fatalf("large.bin changed from %s to %s", want, got)
	}
	if data := run(t, bare, "git", "show", "main:apps/web/app.yaml"); !strings.Contains(data, "image: ghcr.io/acme/web:v3 #") {
		t.Fatalf("app.yaml is\n%s", data)
	}

	// Reading the large file is an error the edit can report.
	req.Edit = func(fsys filesys.FileSystem, _ History) (EditResult, error) {
		_, err := fsys.ReadFile("large.bin")
		return EditResult{}, err
	}
	if _, err := c.Update(ctx, req); !errors.Is(err, ErrEdit) || !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), "large.bin is 50 MiB") {
		t.Fatalf("err = %v, want ErrEdit and ErrFileTooLarge naming large.bin", err)
	}
}

// manifestError is a typed error of the kind the manifest layer returns.
type manifestError struct{ msg string }

func (e *manifestError) Error() string { return e.msg }

// TestEditErrorsAreRedacted: an edit error that quotes a URL with a token
// comes back without the token and still matches its causes.
func TestEditErrorsAreRedacted(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	boom := errors.New("remote reference not allowed")
	typed := &manifestError{msg: "apps/web/kustomization.yaml: parse error"}
	_, err := c.Update(context.Background(), UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
		Edit: func(filesys.FileSystem, History) (EditResult, error) {
			return EditResult{}, fmt.Errorf("resources: https://u:tok3n@h/x: %w (%w, token %s)", boom, typed, testToken)
		}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(form, "tok3n") || strings.Contains(form, testToken) {
			t.Fatalf("secret in %q", form)
		}
	}
	if !strings.Contains(err.Error(), "https://h/x") {
		t.Fatalf("the URL itself should stay: %v", err)
	}
	var got *manifestError
	if !errors.Is(err, ErrEdit) || !errors.Is(err, boom) || !errors.As(err, &got) || got != typed {
		t.Fatalf("err = %v lost its causes (As found %v)", err, got)
	}
	// A typed error that itself quotes a token is not handed out by As.
	leaky := &manifestError{msg: "fetch https://u:tok3n@h/x failed"}
	_, err = c.Update(context.Background(), UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
		Edit: func(filesys.FileSystem, History) (EditResult, error) { return EditResult{}, leaky }})
	got = nil
	if errors.As(err, &got) || got != nil || !errors.Is(err, leaky) || strings.Contains(err.Error(), "tok3n") {
		t.Fatalf("err = %v, As gave %v; want the leaky error matched by Is only", err, got)
	}
}

// panicSigner panics while signing, standing in for a panic in the Git code
// of an Update.
type panicSigner struct{}

func (panicSigner) Sign(io.Reader) ([]byte, error) { panic("signer exploded") }

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, args)
	}, funcr.Options{Verbosity: 1})
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// TestPanicIsRecovered: a panic in the edit function or in the Git code ends
// only its Update, as an ErrPanic without a stack; the stack goes to the log
// at V(1), and the next Update of the same repository runs.
func TestPanicIsRecovered(t *testing.T) {
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	var sink logSink
	ctx := logr.NewContext(context.Background(), sink.logger())
	url := g.url("acme/apps.git")
	base := UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author}
	var nilMap map[string]int

	for _, tc := range []struct {
		name      string
		edit      Edit
		signer    Signer
		isEdit    bool
		keepClone bool
	}{
		{"edit", func(filesys.FileSystem, History) (EditResult, error) {
			nilMap["https://u:tok3n@h/x"]++
			return EditResult{}, nil
		}, nil, true, true},
		{"git code", setImage("ghcr.io/acme/web:v2"), panicSigner{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Edit, r.Signer = tc.edit, tc.signer
			_, err := c.Update(ctx, r)
			if !errors.Is(err, ErrPanic) || errors.Is(err, ErrEdit) != tc.isEdit {
				t.Fatalf("err = %v, want ErrPanic (ErrEdit: %v)", err, tc.isEdit)
			}
			for _, bad := range []string{"goroutine ", ".go:", "tok3n"} {
				if strings.Contains(err.Error(), bad) {
					t.Fatalf("error holds %q: %v", bad, err)
				}
			}
			if log := sink.text(); !strings.Contains(log, "goroutine ") || !strings.Contains(log, "Recovered from a panic") || strings.Contains(log, "tok3n") {
				t.Fatalf("log lacks the stack or holds the token:\n%s", log)
			}
			if _, err := os.Stat(c.Path(url)); (err == nil) != tc.keepClone {
				t.Fatalf("clone kept: %v, want %v", err == nil, tc.keepClone)
			}
			// The lock was released and the repository is usable.
			next, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r = base
			r.Edit = setImage("ghcr.io/acme/web:after-" + strings.ReplaceAll(tc.name, " ", "-"))
			if res, err := c.Update(next, r); err != nil || !res.Created {
				t.Fatalf("update after the panic: %+v %v", res, err)
			}
		})
	}
}

// TestShallowFetch: a repository with more history than History walks is
// fetched shallow, ChangedSince walks its whole window without error, and
// later fetches and pushes on the shallow clone work.
func TestShallowFetch(t *testing.T) {
	g := newGitServer(t)
	const repo = "acme/long.git"
	generateRepo(t, filepath.Join(g.srv.Root(), repo), 10, maxHistory+200)
	c := newCache(t, Options{})
	ctx := context.Background()
	req := UpdateRequest{URL: g.url(repo), Branch: "main", Auth: g.auth(), Author: author}
	walked := false
	req.Edit = func(fsys filesys.FileSystem, h History) (EditResult, error) {
		// Nothing ever changed "absent": the walk goes through all of
		// maxHistory, to the last commit the shallow clone holds.
		changed, err := h.ChangedSince("absent", time.Unix(0, 0))
		if err != nil || changed {
			return EditResult{}, fmt.Errorf("ChangedSince = %v, %v", changed, err)
		}
		walked = true
		return setImage("ghcr.io/acme/web:v2")(fsys, h)
	}
	if _, err := c.Update(ctx, req); err != nil || !walked {
		t.Fatal(err)
	}
	clone := c.Path(req.URL)
	if _, err := os.Stat(filepath.Join(clone, "shallow")); err != nil {
		t.Fatalf("clone is not shallow: %v", err)
	}
	if n := strings.TrimSpace(run(t, clone, "git", "rev-list", "--count", "main")); n != fmt.Sprint(fetchDepth+1) {
		t.Fatalf("clone holds %s commits of main, want %d (the fetch depth and ours)", n, fetchDepth+1)
	}
	other := g.clone(repo)
	other.commitAndPush("foreign", map[string]string{"foreign.txt": "x\n"})
	req.Edit = setImage("ghcr.io/acme/web:v3")
	if res, err := c.Update(ctx, req); err != nil || !res.Created {
		t.Fatalf("incremental update of a shallow clone: %+v %v", res, err)
	}
	log := other.log("main")
	if log[0] != "web: set image ghcr.io/acme/web:v3" || log[1] != "foreign" || log[2] != "web: set image ghcr.io/acme/web:v2" {
		t.Fatalf("history %v", log[:3])
	}
	run(t, other.dir, "git", "fsck", "--strict")
}
