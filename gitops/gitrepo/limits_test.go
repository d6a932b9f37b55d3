package gitrepo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// seedBare writes a repository with the given files on branch main straight
// into the server's root, which is faster than pushing large files over
// HTTP.
func (g *gitServer) seedBare(repo string, files map[string][]byte) {
	g.t.Helper()
	w := g.t.TempDir()
	run(g.t, w, "git", "init", "-q", "-b", "main")
	for name, data := range files {
		p := filepath.Join(w, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	run(g.t, w, "git", "add", "-A")
	run(g.t, w, "git", "commit", "-q", "-m", "seed")
	dir := filepath.Join(g.srv.Root(), repo)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		g.t.Fatal(err)
	}
	run(g.t, filepath.Dir(dir), "git", "clone", "-q", "--bare", w, dir)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// allocated returns the bytes the process allocated while f ran (including
// what the in-process test server allocated, which is little: it copies the
// git CLI's output through a small buffer).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestFetchAboveMaxRepoSize fetches repositories that break the size limits:
// each Update fails with ErrRepoTooLarge, the clone is removed, and the
// process allocates a small fraction of what the repository holds.
func TestFetchAboveMaxRepoSize(t *testing.T) {
	g := newGitServer(t)
	const big = 8 << 20
	g.seedBare("acme/big.git", map[string][]byte{"apps/web/app.yaml": []byte(appYAML), "data.bin": randomBytes(t, big)})
	// 32 MiB of zeros compress to about 32 KiB: far below any pack limit,
	// but go-git would inflate the object whole in memory to index it.
	g.seedBare("acme/bomb.git", map[string][]byte{"apps/web/app.yaml": []byte(appYAML), "zeros.bin": make([]byte, 32<<20)})

	cases := []struct {
		name, repo string
		opts       Options
		message    string
	}{
		{"pack above MaxRepoSize", "acme/big.git", Options{MaxRepoSize: 1 << 20}, "repository exceeds 1 MiB"},
		{"object above MaxObjectSize", "acme/bomb.git", Options{MaxObjectSize: 8 << 20}, "repository holds an object of 32 MiB, more than the 8 MiB limit"},
		{"more objects than MaxObjects", "acme/big.git", Options{MaxObjects: 3}, "repository exceeds 3 objects"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, tc.opts)
			url := g.url(tc.repo)
			var err error
			n := allocated(func() {
				_, err = c.Update(context.Background(), UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v2")})
			})
			t.Logf("error: %v; allocated %.1f MiB", err, float64(n)/(1<<20))
			if !errors.Is(err, ErrRepoTooLarge) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want ErrRepoTooLarge saying %q", err, tc.message)
			}
			if n > 4<<20 {
				t.Fatalf("the refused fetch allocated %d MiB", n>>20)
			}
			if _, err := os.Stat(c.Path(url)); !os.IsNotExist(err) {
				t.Fatalf("the partial clone was kept: %v", err)
			}
		})
	}

	t.Run("within the limits", func(t *testing.T) {
		c := newCache(t, Options{MaxRepoSize: big + 4<<20})
		url := g.url("acme/big.git")
		res, err := c.Update(context.Background(), UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v2")})
		if err != nil || !res.Created {
			t.Fatalf("%+v %v", res, err)
		}
		// The next fetch may bring only what is left of the limit, less
		// than the 6 MiB pushed now.
		w := g.clone("acme/big.git")
		w.commitAndPush("more data", map[string]string{"more.bin": string(randomBytes(t, 6<<20))})
		_, err = c.Update(context.Background(), UpdateRequest{URL: url, Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:v3")})
		if !errors.Is(err, ErrRepoTooLarge) {
			t.Fatalf("err = %v, want ErrRepoTooLarge for a clone growing past the limit", err)
		}
	})
}

// TestCheckPackDeltaSizes: a delta's declared result size counts, not the
// size of the delta itself.
func TestCheckPackDeltaSizes(t *testing.T) {
	for _, tc := range []struct {
		in          []byte
		src, target int64
		ok          bool
		desc        string
	}{
		{[]byte{0x05, 0x0a, 0x90}, 5, 10, true, "one byte each"},
		{[]byte{0x80, 0x01, 0x80, 0x80, 0x80, 0x20}, 128, 64 << 20, true, "multi-byte, 64 MiB result"},
		{[]byte{0x80}, 0, 0, false, "truncated"},
		{bytes.Repeat([]byte{0xff}, 12), 0, 0, false, "too long"},
	} {
		var d deltaHeader
		_, _ = d.Write(tc.in)
		src, target, ok := d.sizes()
		if ok != tc.ok || (ok && (src != tc.src || target != tc.target)) {
			t.Errorf("%s: sizes() = %d, %d, %v; want %d, %d, %v", tc.desc, src, target, ok, tc.src, tc.target, tc.ok)
		}
	}
}

// TestEvictionKeepsCacheUnderBound updates three repositories of about 1 MiB
// each through a Cache that may hold 2.5 MiB: after every Update the clones
// fit, the least recently used goes first, and a clone in use is skipped.
func TestEvictionKeepsCacheUnderBound(t *testing.T) {
	g := newGitServer(t)
	names := []string{"acme/a.git", "acme/b.git", "acme/c.git"}
	for _, n := range names {
		g.seedBare(n, map[string][]byte{"apps/web/app.yaml": []byte(appYAML), "data.bin": randomBytes(t, 1<<20)})
	}
	const bound = 5 << 19 // 2.5 MiB
	c := newCache(t, Options{MaxCacheSize: bound})
	update := func(repo, image string) {
		t.Helper()
		if _, err := c.Update(context.Background(), UpdateRequest{URL: g.url(repo), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage(image)}); err != nil {
			t.Fatal(err)
		}
		if n := dirSize(filepath.Join(c.opts.Dir, "repos")); n > bound {
			t.Fatalf("after updating %s the cache holds %d bytes, more than %d", repo, n, bound)
		}
	}
	cached := func() string {
		var out []string
		for _, n := range names {
			if _, err := os.Stat(c.Path(g.url(n))); err == nil {
				out = append(out, strings.TrimSuffix(strings.TrimPrefix(n, "acme/"), ".git"))
			}
		}
		return strings.Join(out, ",")
	}
	for i, n := range names {
		update(n, fmt.Sprintf("ghcr.io/acme/web:v%d", i))
	}
	if got := cached(); got != "b,c" {
		t.Fatalf("cached %s, want b,c (a was used least recently)", got)
	}

	// b is in use (its lock held, as by a slow Update): the next eviction
	// passes over it, although it is the least recently used.
	b := c.repo(SanitizeURL(g.url("acme/b.git")))
	if !b.tryAcquire() {
		t.Fatal("b is locked")
	}
	update("acme/a.git", "ghcr.io/acme/web:a2")
	b.release()
	if got := cached(); got != "a,b" {
		t.Fatalf("cached %s, want a,b (c evicted while b was in use)", got)
	}

	// A Cache restarted on the same directory counts the clones it finds.
	restarted := newCache(t, Options{Dir: c.opts.Dir, MaxCacheSize: bound})
	if _, err := restarted.Update(context.Background(), UpdateRequest{URL: g.url("acme/c.git"), Branch: "main", Auth: g.auth(), Author: author, Edit: setImage("ghcr.io/acme/web:c2")}); err != nil {
		t.Fatal(err)
	}
	if n := dirSize(filepath.Join(c.opts.Dir, "repos")); n > bound {
		t.Fatalf("after a restart the cache holds %d bytes, more than %d", n, bound)
	}
	if _, err := os.Stat(restarted.Path(g.url("acme/c.git"))); err != nil {
		t.Fatalf("the clone just used was evicted: %v", err)
	}
}
