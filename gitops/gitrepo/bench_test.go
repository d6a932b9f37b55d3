package gitrepo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkWriteBack measures one write-back (fetch what is new, change one
// manifest, commit, push) on a generated repository of 20,000 files and 5,000
// commits served over smart HTTP with authentication, three ways:
//
//	cached       this package, with its long-lived bare clone
//	fresh-clone  this package with an empty cache directory each time, as a
//	             writer that clones for every write-back would
//	git-cli      the git CLI in an existing work-tree clone: fetch, reset to
//	             the fetched tip, edit, commit -a, push
//
// Before every write-back, untimed, another writer pushes a commit, so each
// write-back has something to fetch. BENCH_GIT_FILES and BENCH_GIT_COMMITS
// shrink the repository for a quick run. hack/bench-gitwriteback.sh runs it
// and prints medians.
func BenchmarkWriteBack(b *testing.B) {
	files := envInt("BENCH_GIT_FILES", 20000)
	commits := envInt("BENCH_GIT_COMMITS", 5000)
	g := newGitServer(b)
	const repo = "acme/big.git"
	generateRepo(b, filepath.Join(g.srv.Root(), repo), files, commits)
	url := g.url(repo)
	other := g.clone(repo)
	foreign := 0
	pushForeign := func() {
		foreign++
		other.commitAndPush(fmt.Sprintf("foreign %d", foreign), map[string]string{"d000/f000.yaml": fmt.Sprintf("name: d000-f000\nvalue: foreign-%d\n", foreign)})
	}
	image := 0
	nextEdit := func() Edit {
		image++
		return setImage(fmt.Sprintf("ghcr.io/acme/web:b%d", image))
	}
	ctx := context.Background()

	b.Run("cached", func(b *testing.B) {
		c := newCache(b, Options{})
		// The first write-back clones; it is not what is measured.
		if _, err := c.Update(ctx, UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author, Edit: nextEdit()}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			pushForeign()
			edit := nextEdit()
			b.StartTimer()
			res, err := c.Update(ctx, UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author, Edit: edit})
			if err != nil || !res.Created {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})

	b.Run("fresh-clone", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			pushForeign()
			edit := nextEdit()
			dir, err := os.MkdirTemp("", "bench-fresh-")
			if err != nil {
				b.Fatal(err)
			}
			c := newCache(b, Options{Dir: dir})
			b.StartTimer()
			res, err := c.Update(ctx, UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author, Edit: edit})
			b.StopTimer()
			if err != nil || !res.Created {
				b.Fatalf("%+v %v", res, err)
			}
			_ = os.RemoveAll(dir)
			b.StartTimer()
		}
	})

	b.Run("git-cli", func(b *testing.B) {
		w := g.clone(repo)
		app := filepath.Join(w.dir, "apps/web/app.yaml")
		for range b.N {
			b.StopTimer()
			pushForeign()
			image++
			b.StartTimer()
			run(b, w.dir, "git", "fetch", "-q", "origin", "main")
			run(b, w.dir, "git", "reset", "-q", "--hard", "FETCH_HEAD")
			data, err := os.ReadFile(app)
			if err != nil {
				b.Fatal(err)
			}
			data = imageLine.ReplaceAll(data, []byte(fmt.Sprintf("  image: ghcr.io/acme/web:b%d", image)))
			if err := os.WriteFile(app, data, 0o644); err != nil {
				b.Fatal(err)
			}
			run(b, w.dir, "git", "commit", "-q", "-a", "-m", fmt.Sprintf("web: set image ghcr.io/acme/web:b%d", image))
			run(b, w.dir, "git", "push", "-q", "origin", "HEAD:main")
		}
	})
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// generateRepo writes a bare repository with `files` files in directories of
// 100 (plus apps/web/app.yaml) and `commits` commits, each after the first
// changing four files, through git fast-import.
func generateRepo(tb testing.TB, dir string, files, commits int) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	run(tb, dir, "git", "init", "-q", "--bare", "-b", "main")
	cmd := gitCmd(dir, "git", "fast-import", "--quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	path := func(i int) string { return fmt.Sprintf("d%03d/f%03d.yaml", i/100, i%100) }
	when := int64(1_700_000_000)
	for c := 0; c < commits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Gen <gen@example.com> %d +0000\n", when+int64(c))
		data(fmt.Sprintf("generated commit %d", c))
		if c == 0 {
			fmt.Fprintf(w, "M 100644 inline apps/web/app.yaml\n")
			data(appYAML)
			for i := range files {
				fmt.Fprintf(w, "M 100644 inline %s\n", path(i))
				data(fmt.Sprintf("name: %s\nvalue: 0\n", path(i)))
			}
			continue
		}
		for k := range 4 {
			i := (c*7919 + k*104729) % files
			fmt.Fprintf(w, "M 100644 inline %s\n", path(i))
			data(fmt.Sprintf("name: %s\nvalue: %d\n", path(i), c))
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := stdin.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		tb.Fatal(err)
	}
	// Serve a packed repository, as a real server would.
	run(tb, dir, "git", "repack", "-a", "-d", "-q")
}
