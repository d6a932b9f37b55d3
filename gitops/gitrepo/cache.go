// Package gitrepo writes small edits to a Git branch quickly and safely.
//
// A Cache keeps one bare clone per repository URL on local disk and brings it
// up to date with an incremental fetch before every edit, so a write-back
// never pays for a fresh clone. Edits are made at the object level: the edit
// function sees the branch tip's tree through a lazily loaded kustomize
// FileSystem (no work tree is checked out, so the size of the repository
// hardly matters), the changed blobs and the trees above them are written,
// and a commit is pushed with exactly those objects.
//
// A push names the branch tip it was built on; the server refuses it when the
// branch has moved since (the receive-pack protocol checks the old value
// under the ref lock). Then the clone is fetched again, the edit function runs
// again on the new tip, and the push is retried with a jittered backoff, a
// bounded number of times. Updates of one repository are serialised in the
// process, so many writers finishing at once all land, one after another.
//
// Many tenants share one Cache, so no repository may stall or exhaust the
// process: every Update runs under a deadline, a fetch is cut off past a size
// limit (and fetches only the history the History interface can walk), the
// clones together stay under a disk budget, the edit reads only the files it
// opens, every error is redacted, and a panic ends only the Update that
// raised it.
//
// The files follow an Update's phases, each using only the one before it:
// fetch.go brings the tips into the clone (clone.go, within limits.go),
// edit.go runs the Edit on a tip's tree (treefs.go, history.go), commit.go
// builds and signs the commit, push.go sends it; update.go runs them in
// that order and retries, and cache.go holds the clones and the locks.
package gitrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Defaults of Options.
const (
	DefaultMaxAttempts   = 8
	DefaultBackoff       = 50 * time.Millisecond
	DefaultMaxPacks      = 64
	DefaultTimeout       = 2 * time.Minute
	DefaultMaxRepoSize   = 512 << 20
	DefaultMaxCacheSize  = 2 << 30
	DefaultMaxFileSize   = 4 << 20
	DefaultMaxObjectSize = 64 << 20
	DefaultMaxObjects    = 250_000
	maxBackoff           = 5 * time.Second
	// objectCacheSize bounds the decoded objects each clone keeps in memory
	// between Updates. go-git's default (96 MiB) is per clone, and a Cache
	// keeps every clone open, so with many repositories it would grow
	// without a bound; an Update reads a few trees and small files.
	objectCacheSize = 8 << 20
)

// Options configure a Cache.
type Options struct {
	// Dir holds the bare clones, one directory per repository URL.
	Dir string
	// MaxAttempts is how many times a push is tried when the branch keeps
	// moving. Default DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the wait after the first lost race; it doubles after each
	// further one, with jitter. Default DefaultBackoff.
	Backoff time.Duration
	// Now gives the commit time. Default time.Now.
	Now func() time.Time
	// MaxPacks bounds the pack files a clone collects (each incremental
	// fetch adds one). Past it the clone is dropped and the next update
	// clones afresh, which is cheaper than repacking in-process and keeps
	// object lookups fast. Default DefaultMaxPacks.
	MaxPacks int
	// Timeout bounds the network work of one Update: every ref listing,
	// fetch and push, and the waits between push attempts. A shorter
	// deadline on the caller's context wins. The wait for another Update of
	// the same repository is bounded only by the caller's context. Errors
	// from an expired deadline (either) match ErrTimeout. Default
	// DefaultTimeout.
	Timeout time.Duration
	// MaxRepoSize bounds the bytes one clone takes on disk. A fetch whose
	// pack would take the clone past it is cut off, fails with
	// ErrRepoTooLarge, and the clone is removed. A first clone is shallow
	// where the server allows (the history History can walk), so this
	// bounds the recent history and what was added since, not all of it.
	// Default DefaultMaxRepoSize.
	MaxRepoSize int64
	// MaxObjectSize bounds the size of one object (a file, or the result of
	// a delta) in a fetched pack: go-git holds each object whole in memory
	// while it indexes a pack, and a small compressed object can inflate to
	// gigabytes. A pack with a larger object fails with ErrRepoTooLarge.
	// Default DefaultMaxObjectSize.
	MaxObjectSize int64
	// MaxObjects bounds the objects of one fetched pack: go-git keeps an
	// index entry per object in memory while it indexes a pack (measured:
	// a 200,000-object clone peaks at 88 MiB of heap, about 450 bytes per
	// object). Past it the fetch fails with ErrRepoTooLarge. Default
	// DefaultMaxObjects, about 110 MiB of index.
	MaxObjects int
	// MaxCacheSize bounds the bytes all clones under Dir take together.
	// After each Update, whole clones are removed, least recently used
	// first and skipping those in use, until the rest fit; a removed clone
	// is cloned again by its next Update. It should exceed MaxRepoSize, or
	// the largest repository is cloned afresh every time. Default
	// DefaultMaxCacheSize.
	MaxCacheSize int64
	// MaxFileSize bounds the file an Edit can read: reading a larger one
	// fails with ErrFileTooLarge, and the file stays in the commit as it
	// was. Default DefaultMaxFileSize.
	MaxFileSize int64
}

// Cache keeps the clones and serialises updates per repository.
type Cache struct {
	opts Options
	// http is this Cache's HTTP(S) transport, with connection timeouts.
	http transport.Transport
	mu   sync.Mutex
	// repos maps a clone's directory to its state.
	repos map[string]*repo
	// evictMu keeps eviction passes of concurrent Updates apart.
	evictMu sync.Mutex
}

// New returns a Cache that keeps its clones under opts.Dir.
func New(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: cache directory is empty", ErrInvalidRequest)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cache directory: %w", err)
	}
	return &Cache{opts: opts.withDefaults(), http: newHTTPTransport(), repos: map[string]*repo{}}, nil
}

// withDefaults fills in the defaults of the options left unset.
func (opts Options) withDefaults() Options {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPacks <= 0 {
		opts.MaxPacks = DefaultMaxPacks
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxRepoSize <= 0 {
		opts.MaxRepoSize = DefaultMaxRepoSize
	}
	if opts.MaxObjectSize <= 0 {
		opts.MaxObjectSize = DefaultMaxObjectSize
	}
	if opts.MaxObjects <= 0 || opts.MaxObjects > 1<<31 {
		opts.MaxObjects = DefaultMaxObjects
	}
	if opts.MaxCacheSize <= 0 {
		opts.MaxCacheSize = DefaultMaxCacheSize
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	return opts
}

// Update fetches the branch, applies the edit, commits and pushes, retrying
// when another writer moved the branch in between. Updates of one repository
// URL run one at a time. Errors never contain a credential or a URL's user
// info, the edit's own errors included; they still match the sentinels and
// types of their causes with errors.Is and errors.As.
func (c *Cache) Update(ctx context.Context, req UpdateRequest) (_ Commit, err error) {
	secrets := append(req.Auth.secrets(), urlSecrets(req.URL)...)
	defer func() {
		// The edit's errors too: they quote repository content, such as a
		// kustomization's remote URL with a token in it, and they end up
		// in the status of an object whose author may not own the repo.
		err = redact(err, secrets...)
	}()
	if err := req.validate(); err != nil {
		return Commit{}, err
	}
	url := SanitizeURL(req.URL)
	r := c.repo(url)
	if err := r.acquire(ctx); err != nil {
		return Commit{}, markTimeout(fmt.Errorf("wait for another update of %s: %w", url, err))
	}
	res, err := c.locked(ctx, r, url, req, secrets)
	c.evict(ctx)
	return res, err
}

// locked runs one Update with the repository's lock held and releases the
// lock however the Update ends, a panic included.
func (c *Cache) locked(ctx context.Context, r *repo, url string, req UpdateRequest, secrets []string) (res Commit, err error) {
	defer r.release()
	defer func() {
		if p := recover(); p != nil {
			// A panic in go-git or in our Git code may have left the
			// clone half-written; the next Update clones afresh.
			r.drop()
			res, err = Commit{}, panicError(ctx, "update of "+url, p, secrets)
		}
	}()
	deadline, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	res, err = c.update(deadline, r, url, req)
	if err == nil {
		r.compact(c.opts.MaxPacks)
	}
	err = markTimeout(err)
	r.measure()
	r.used.Store(time.Now().UnixNano())
	return res, err
}

// clonePath is the directory of a repository URL's clone.
func (c *Cache) clonePath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.opts.Dir, "repos", hex.EncodeToString(sum[:12]))
}

// repo returns the per-URL state, creating it on first use.
func (c *Cache) repo(url string) *repo {
	return c.repoAt(c.clonePath(url))
}

// repoAt returns the state of the clone in dir, creating it on first use;
// eviction finds clones by directory, some left by an earlier process.
func (c *Cache) repoAt(dir string) *repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.repos[dir]
	if !ok {
		r = &repo{path: dir, lock: make(chan struct{}, 1)}
		r.size.Store(-1)
		c.repos[dir] = r
	}
	return r
}

// Path returns the directory of the bare clone of a repository URL (it may
// not exist yet). Tests and tools read it with the git CLI.
func (c *Cache) Path(url string) string {
	return c.clonePath(SanitizeURL(url))
}
