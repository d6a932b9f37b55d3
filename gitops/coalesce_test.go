package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/gitops/manifest"
)

// appFiles are n CanaryApps app0..app(n-1), each in apps/app<i>/.
func appFiles(n int) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("apps/app%d/canaryapp.yaml", i)] = strings.Replace(shopManifest, "name: web\nspec:", fmt.Sprintf("name: app%d\nspec:", i), 1)
	}
	return files
}

func rolledBackApp(e *env, i int, now time.Time) *v1.CanaryApp {
	app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: fmt.Sprintf("apps/app%d", i)}, rollback(now), checks(now.Add(-time.Minute), "ghcr.io/acme/web:v3")...)
	app.Name = fmt.Sprintf("app%d", i)
	return app
}

// waiting is how many outcomes wait for a flush, on every branch.
func (c *coalescer) waiting() (queues, outcomes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.queues {
		outcomes += len(q.pending)
	}
	return len(c.queues), outcomes
}

// holdRepo runs an Update whose edit waits until release is called, so
// that the outcomes written meanwhile queue up behind it.
func holdRepo(t *testing.T, e *env) (release func()) {
	started, done, finished := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := e.writer.opts.Cache.Update(context.Background(), gitrepo.UpdateRequest{URL: e.url(), Branch: "main",
			Auth: gitrepo.Auth{Username: gitUser, Password: gitToken}, Author: DefaultAuthor,
			Edit: func(fsys filesys.FileSystem, _ gitrepo.History) (gitrepo.EditResult, error) {
				close(started)
				<-done
				return gitrepo.EditResult{Message: "person: notes"}, fsys.WriteFile("notes.md", []byte("n\n"))
			}})
		finished <- err
	}()
	<-started
	return func() {
		close(done)
		if err := <-finished; err != nil {
			t.Error(err)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestCoalescedOutcomesShareACommit: outcomes of one branch that wait at
// the same time land in one commit, each with its own trailer block and its
// own compare-and-swap; one that fails gets its own error and holds back
// no other.
func TestCoalescedOutcomesShareACommit(t *testing.T) {
	const apps = 12
	files := appFiles(apps)
	// app5's manifest already names a newer image: compare-and-swap keeps
	// it and records only the failure. app7 has no manifest: its edit fails.
	files["apps/app5/canaryapp.yaml"] = strings.Replace(files["apps/app5/canaryapp.yaml"], "web:v3", "web:v4", 1)
	delete(files, "apps/app7/canaryapp.yaml")
	files["apps/app7/README.md"] = "moved\n"
	e := newEnv(t, files)
	release := holdRepo(t, e)
	now := time.Now()
	results := make([]Result, apps)
	errs := make([]error, apps)
	var wg sync.WaitGroup
	write := func(i int) {
		wg.Go(func() { results[i], errs[i] = e.writer.Write(context.Background(), rolledBackApp(e, i, now)) })
	}
	// app0 starts a flush, which waits for the held repository; the other
	// eleven queue behind it and go in the next flush, together.
	write(0)
	eventually(t, "app0's flush", func() bool { q, n := e.writer.batch.waiting(); return q == 1 && n == 0 })
	for i := 1; i < apps; i++ {
		write(i)
	}
	eventually(t, "11 queued outcomes", func() bool { _, n := e.writer.batch.waiting(); return n == apps-1 })
	release()
	wg.Wait()

	if !errors.Is(errs[7], manifest.ErrNoDocument) || !IsStalled(errs[7]) {
		t.Fatalf("app7: %v", errs[7])
	}
	for i, err := range errs {
		if i != 7 && err != nil {
			t.Fatalf("app%d: %v", i, err)
		}
	}
	if log := e.log("main"); len(log) != 4 || log[0] != "canaryop: write back 10 outcomes" || !strings.HasPrefix(log[1], "canaryapp shop/app0: roll back") {
		t.Fatalf("history %q", log)
	}
	e.show("origin/main") // fetches
	shared := e.git("log", "-1", "--format=%B", "origin/main")
	for i := 1; i < apps; i++ {
		if n := strings.Count(shared, fmt.Sprintf("Canaryop-App: shop/app%d\n", i)); n != map[bool]int{true: 0, false: 1}[i == 7] {
			t.Fatalf("app%d has %d trailer blocks in\n%s", i, n, shared)
		}
		if i != 7 && results[i].Commit != results[1].Commit {
			t.Fatalf("app%d in commit %s, app1 in %s", i, results[i].Commit, results[1].Commit)
		}
	}
	if strings.Count(shared, "Canaryop-Outcome: RolledBack\n") != 10 || strings.Count(shared, "\n"+outcomeSeparator+"\n") != 10 {
		t.Fatalf("shared commit:\n%s", shared)
	}
	for i := range apps {
		if i == 7 {
			continue
		}
		body := e.show(fmt.Sprintf("origin/main:apps/app%d/canaryapp.yaml", i))
		image := map[bool]string{true: "image: ghcr.io/acme/web:v4", false: "image: ghcr.io/acme/web:v2"}[i == 5]
		if !strings.Contains(body, image) || !strings.Contains(body, "- image: ghcr.io/acme/web:v3") {
			t.Fatalf("app%d manifest:\n%s", i, body)
		}
	}
	if !strings.Contains(results[5].Message, "newer image ghcr.io/acme/web:v4") {
		t.Fatalf("app5: %q", results[5].Message)
	}
	noSecrets(t, shared, errs[7].Error())

	// Written again (a retry after a lost status patch): Git holds every
	// outcome, so no commit is made.
	for i := range apps {
		if i == 7 {
			continue
		}
		if res, err := e.writer.Write(context.Background(), rolledBackApp(e, i, now)); err != nil || !strings.Contains(res.Message, "Git already holds the outcome") {
			t.Fatalf("app%d again: %v %q", i, err, res.Message)
		}
	}
	if n := len(e.log("main")); n != 4 {
		t.Fatalf("%d commits after the retries", n)
	}
}

// TestCoalescedWaitEndsWithItsContext: an outcome whose deadline passes
// while it waits leaves the queue and is not written.
func TestCoalescedWaitEndsWithItsContext(t *testing.T) {
	e := newEnv(t, appFiles(2))
	release := holdRepo(t, e)
	now := time.Now()
	first := make(chan error, 1)
	go func() { _, err := e.writer.Write(context.Background(), rolledBackApp(e, 0, now)); first <- err }()
	eventually(t, "app0's flush", func() bool { q, n := e.writer.batch.waiting(); return q == 1 && n == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.writer.Write(ctx, rolledBackApp(e, 1, now)); !errors.Is(err, gitrepo.ErrTimeout) {
		t.Fatalf("app1: %v", err)
	}
	if _, n := e.writer.batch.waiting(); n != 0 {
		t.Fatalf("%d still queued", n)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if body := e.show("origin/main:apps/app1/canaryapp.yaml"); strings.Contains(body, "failedImages") {
		t.Fatalf("app1 written after it gave up:\n%s", body)
	}
}
