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
package gitrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/go-logr/logr"
	"sigs.k8s.io/kustomize/kyaml/filesys"
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
	// maxHaves bounds the ancestors of each local branch offered to the
	// server during a fetch; the server needs only one common commit.
	maxHaves = 32
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
	return &Cache{opts: opts, http: newHTTPTransport(), repos: map[string]*repo{}}, nil
}

// Author names the author and committer of a commit.
type Author struct {
	Name  string
	Email string
}

// Edit changes files in fsys, which shows the branch tip's tree rooted at the
// repository root, and returns the commit message. When the files end up
// byte-for-byte as they were, nothing is committed. An Edit may run more than
// once for one Update (each time the branch moved under it), each time on a
// fresh tree, so it must not depend on state left by an earlier run.
type Edit func(fsys filesys.FileSystem, hist History) (message string, err error)

// History answers questions about the commits behind the tree an Edit sees.
type History interface {
	// ChangedSince reports whether a commit made (by committer time) at or
	// after t changed path, a file or folder relative to the repository
	// root ("" or "." is the root). It follows first parents from the tip
	// and stops at the first commit older than t.
	ChangedSince(path string, t time.Time) (bool, error)
}

// maxHistory bounds the commits ChangedSince looks at.
const maxHistory = 1000

// fetchDepth is the history a fetch asks for: ChangedSince compares each of
// maxHistory first-parent commits with its parent, so it reads one more.
const fetchDepth = maxHistory + 1

type history struct {
	tip *object.Commit
}

func (h history) ChangedSince(p string, t time.Time) (bool, error) {
	p = strings.Trim(path.Clean("/"+p), "/")
	c := h.tip
	for range maxHistory {
		if c.Committer.When.Before(t) {
			return false, nil
		}
		cur, err := entryHash(c, p)
		if err != nil {
			return false, err
		}
		if c.NumParents() == 0 {
			return !cur.IsZero(), nil
		}
		parent, err := c.Parent(0)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			// The shallow clone ends here (see fetchDepth): nothing older
			// is known, as when maxHistory is reached.
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read parent of %s: %w", c.Hash, err)
		}
		prev, err := entryHash(parent, p)
		if err != nil {
			return false, err
		}
		if cur != prev {
			return true, nil
		}
		c = parent
	}
	return false, nil
}

// entryHash is the hash of the tree or blob at p in a commit, zero when
// there is none.
func entryHash(c *object.Commit, p string) (plumbing.Hash, error) {
	tree, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	if p == "" {
		return tree.Hash, nil
	}
	e, err := tree.FindEntry(p)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("find %s in %s: %w", p, c.Hash, err)
	}
	return e.Hash, nil
}

// Signer signs the encoded commit (see go-git's Signer); OpenPGPSigner makes
// one from an armored private key.
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// UpdateRequest is one edit of one branch.
type UpdateRequest struct {
	// URL of the repository: https://, http://, ssh:// or user@host:path.
	// User info in the URL is ignored; credentials come from Auth.
	URL string
	// Branch to read and, unless PushBranch is set, to push to.
	Branch string
	// PushBranch, when set, receives the commit instead of Branch: it is
	// created from Branch, or, when it exists, the commit goes on top of
	// it. Used for pull requests.
	PushBranch string
	// Auth for fetch and push.
	Auth Auth
	// Author of the commit; also its committer.
	Author Author
	// Edit makes the change.
	Edit Edit
	// Signer, when set, signs the commit.
	Signer Signer
}

// Commit is the result of an Update.
type Commit struct {
	// SHA is the commit that holds the change: the new commit, or, when
	// nothing needed to change, the tip that already held it.
	SHA string
	// Branch holds SHA.
	Branch string
	// Created is true when this Update pushed a new commit.
	Created bool
	// Files are the repository-relative paths the new commit changed.
	Files []string
	// Attempts is how many push attempts were made.
	Attempts int
}

// String describes the request without credentials, for logs.
func (r UpdateRequest) String() string {
	s := fmt.Sprintf("update %s branch %s", SanitizeURL(r.URL), r.Branch)
	if r.PushBranch != "" {
		s += " via " + r.PushBranch
	}
	return s
}

// GoString is String, so that %#v prints no credential either.
func (r UpdateRequest) GoString() string { return r.String() }

func (r UpdateRequest) validate() error {
	switch {
	case r.URL == "":
		return fmt.Errorf("%w: repository URL is empty", ErrInvalidRequest)
	case r.Branch == "":
		return fmt.Errorf("%w: branch is empty", ErrInvalidRequest)
	case r.Edit == nil:
		return fmt.Errorf("%w: edit function is nil", ErrInvalidRequest)
	case r.Author.Name == "" || r.Author.Email == "":
		return fmt.Errorf("%w: author name and email are required", ErrInvalidRequest)
	case r.PushBranch == r.Branch:
		return fmt.Errorf("%w: push branch equals the branch; leave it empty to push to the branch", ErrInvalidRequest)
	}
	for _, b := range []string{r.Branch, r.PushBranch} {
		if b != "" && !validBranch(b) {
			return fmt.Errorf("%w: invalid branch name %q", ErrInvalidRequest, b)
		}
	}
	return nil
}

// validBranch applies the rules of git check-ref-format that matter for a
// branch name handed to the remote.
func validBranch(b string) bool {
	return !strings.Contains(b, "..") && !strings.ContainsAny(b, " ~^:?*[\\\t\n") &&
		!strings.HasPrefix(b, "/") && !strings.HasSuffix(b, "/") && !strings.HasSuffix(b, ".lock") &&
		!strings.Contains(b, "//") && !strings.Contains(b, "@{") && !strings.HasPrefix(b, "-")
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

// markTimeout makes an error that a deadline caused match ErrTimeout.
func markTimeout(err error) error {
	if err != nil && !errors.Is(err, ErrTimeout) && timedOut(err) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// panicError turns a recovered panic into an error without its stack; the
// stack goes to the log at V(1), for whoever debugs the cause.
func panicError(ctx context.Context, what string, p any, secrets []string) error {
	value := redactString(fmt.Sprint(p), secrets...)
	if len(value) > 200 {
		value = value[:200] + "..."
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("Recovered from a panic", "during", what, "panic", value,
		"stack", redactString(string(debug.Stack()), secrets...))
	return fmt.Errorf("%w: %s: %s", ErrPanic, what, value)
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

type repo struct {
	// lock is held by the Update (or eviction) using the clone; a channel
	// so that waiting for it can end with the caller's context.
	lock chan struct{}
	path string
	// store is the open clone; only the lock holder touches it.
	store *filesystem.Storage
	// size is the clone's bytes on disk when last measured, -1 when not
	// yet measured.
	size atomic.Int64
	// used is when an Update of the clone last ended (Unix nanoseconds).
	used atomic.Int64
}

func (r *repo) acquire(ctx context.Context) error {
	select {
	case r.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *repo) tryAcquire() bool {
	select {
	case r.lock <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *repo) release() { <-r.lock }

// measure records the clone's size on disk; the lock must be held.
func (r *repo) measure() { r.size.Store(dirSize(r.path)) }

// drop forgets and removes the clone; the lock must be held. A failed
// removal is healed by open, which resets what it cannot use.
func (r *repo) drop() {
	r.store = nil
	_ = os.RemoveAll(r.path)
	r.size.Store(dirSize(r.path))
}

// open opens the bare clone, creating an empty one when there is none (the
// first fetch then brings the history) and starting over when the
// directory holds no usable repository.
func (r *repo) open() error {
	if r.store != nil {
		return nil
	}
	defer r.measure()
	st := newStorage(r.path)
	if _, err := git.Open(st, nil); err == nil {
		r.store = st
		return nil
	}
	if err := os.RemoveAll(r.path); err != nil {
		return fmt.Errorf("reset clone: %w", err)
	}
	st = newStorage(r.path)
	if _, err := git.Init(st, nil); err != nil {
		return fmt.Errorf("init clone: %w", err)
	}
	r.store = st
	return nil
}

func newStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRU(objectCacheSize))
}

// compact drops a clone that has collected too many packs; see
// Options.MaxPacks.
func (r *repo) compact(maxPacks int) {
	if r.store == nil {
		return
	}
	packs, err := r.store.ObjectPacks()
	if err != nil || len(packs) <= maxPacks {
		return
	}
	r.drop()
}

// session is what one Update needs to talk to the remote.
type session struct {
	tr   transport.Transport
	ep   *transport.Endpoint
	auth transport.AuthMethod
}

func (c *Cache) update(ctx context.Context, r *repo, url string, req UpdateRequest) (Commit, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return Commit{}, fmt.Errorf("%w: parse repository URL: %v", ErrInvalidRequest, err)
	}
	auth, err := req.Auth.method(ep, filepath.Join(c.opts.Dir, "ssh"))
	if err != nil {
		return Commit{}, err
	}
	tr, err := c.transportFor(ep)
	if err != nil {
		return Commit{}, err
	}
	s := session{tr: tr, ep: ep, auth: auth}
	if err := r.open(); err != nil {
		return Commit{}, err
	}
	base := plumbing.NewBranchReferenceName(req.Branch)
	target := base
	if req.PushBranch != "" {
		target = plumbing.NewBranchReferenceName(req.PushBranch)
	}
	var rejected *RejectedError
	var rejectedOld plumbing.Hash
	for attempt := 1; ; attempt++ {
		tips, err := r.fetch(ctx, s, c.limits(), base, target)
		if err != nil {
			return Commit{}, err
		}
		baseTip, ok := tips[base]
		if !ok {
			return Commit{}, fmt.Errorf("%w: %s", ErrBranchNotFound, req.Branch)
		}
		old := tips[target]
		if rejected != nil && old == rejectedOld {
			// Refused although the branch had not moved: a hook or a
			// branch protection said no, and will say no again.
			return Commit{}, rejected
		}
		p, err := r.plan(ctx, req, c.opts, baseTip, old, target != base)
		if err != nil {
			return Commit{}, err
		}
		if !p.created {
			return Commit{SHA: p.at.String(), Branch: strings.TrimPrefix(p.branch.String(), "refs/heads/"), Attempts: attempt - 1}, nil
		}
		err = r.push(ctx, s, target, old, p)
		if err == nil {
			if err := r.adopt(target, p); err != nil {
				return Commit{}, err
			}
			return Commit{SHA: p.commit.String(), Branch: strings.TrimPrefix(target.String(), "refs/heads/"), Created: true, Files: p.files, Attempts: attempt}, nil
		}
		rejected, rejectedOld = nil, plumbing.ZeroHash
		var rej *RejectedError
		switch {
		case errors.As(err, &rej):
			rejected, rejectedOld = rej, old
		case errors.Is(err, errMoved):
		default:
			return Commit{}, err
		}
		if attempt >= c.opts.MaxAttempts {
			return Commit{}, fmt.Errorf("%w: %d attempts on %s", ErrConflict, attempt, target.Short())
		}
		if err := c.wait(ctx, attempt); err != nil {
			return Commit{}, err
		}
	}
}

// limits are the bounds of a fetch; download sets the budget.
func (c *Cache) limits() limits {
	return limits{
		maxRepo:    c.opts.MaxRepoSize,
		maxObject:  c.opts.MaxObjectSize,
		maxObjects: uint32(c.opts.MaxObjects),
	}
}

// wait sleeps for the jittered, doubling backoff of an attempt, or until ctx
// ends. The jitter keeps writers that lost the same race from colliding again.
func (c *Cache) wait(ctx context.Context, attempt int) error {
	d := c.opts.Backoff << min(attempt-1, 16)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fetch asks the remote for the given branches, downloads the objects the
// clone lacks, and points the clone's branches at the remote's tips. It
// returns the tips of the branches the remote has.
func (r *repo) fetch(ctx context.Context, s session, lim limits, names ...plumbing.ReferenceName) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	sess, err := openSession(ctx, s.ep, func() (transport.UploadPackSession, error) {
		return s.tr.NewUploadPackSession(s.ep, s.auth)
	})
	if err != nil {
		return nil, classify("fetch", err)
	}
	defer closeSession(ctx, sess)
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, classify("fetch", err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return nil, fmt.Errorf("fetch: read advertised refs: %w", err)
	}
	tips := map[plumbing.ReferenceName]plumbing.Hash{}
	var wants []plumbing.Hash
	for _, name := range names {
		if _, done := tips[name]; done {
			continue
		}
		ref, err := refs.Reference(name)
		if err != nil {
			continue
		}
		tips[name] = ref.Hash()
		if _, err := r.store.EncodedObject(plumbing.CommitObject, ref.Hash()); err != nil {
			wants = append(wants, ref.Hash())
		}
	}
	if len(wants) > 0 {
		req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
		if ar.Capabilities.Supports(capability.NoProgress) {
			_ = req.Capabilities.Set(capability.NoProgress)
		}
		req.Wants = wants
		req.Haves = r.haves()
		if ar.Capabilities.Supports(capability.Shallow) {
			_ = req.Capabilities.Set(capability.Shallow)
			if len(req.Haves) == 0 {
				// A first clone brings only the history ChangedSince
				// can walk: older commits cost disk and time and are
				// never read. Later fetches ask for no depth (which
				// makes the server walk that history again each
				// time), as git fetch does; the history then grows
				// from this window.
				req.Depth = packp.DepthCommits(fetchDepth)
			}
			// The commits whose parents the clone lacks, so that the
			// server does not count on them.
			if req.Shallows, err = r.store.Shallow(); err != nil {
				return nil, fmt.Errorf("fetch: read shallow commits: %w", err)
			}
		}
		if err := r.download(ctx, sess, req, lim); err != nil {
			if errors.Is(err, ErrRepoTooLarge) {
				// Remove what was fetched: the clone is over the
				// limit or holds a partial pack.
				r.drop()
			} else {
				r.removeTempPacks()
			}
			return nil, err
		}
	}
	for _, name := range names {
		if h, ok := tips[name]; ok {
			if err := r.store.SetReference(plumbing.NewHashReference(name, h)); err != nil {
				return nil, fmt.Errorf("fetch: set %s: %w", name.Short(), err)
			}
		} else if err := r.store.RemoveReference(name); err != nil {
			return nil, fmt.Errorf("fetch: remove %s: %w", name.Short(), err)
		}
	}
	return tips, nil
}

func (r *repo) download(ctx context.Context, sess transport.UploadPackSession, req *packp.UploadPackRequest, lim limits) (err error) {
	reader, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return classify("fetch", err)
	}
	defer func() {
		if cerr := reader.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("fetch: %w", cerr)
		}
	}()
	var pack io.Reader = reader
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, reader)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, reader)
	}
	// Measured now, not at the start of the Update: a retried push
	// fetches again, and each fetch adds a pack.
	lim.budget = lim.maxRepo - dirSize(r.path)
	guard := newPackGuard(pack, lim)
	err = packfile.UpdateObjectStorage(r.store, guard)
	if gerr := guard.close(); gerr != nil && errors.Is(gerr, ErrRepoTooLarge) {
		return fmt.Errorf("fetch: %w", gerr)
	}
	if err != nil {
		return fmt.Errorf("fetch: store pack: %w", err)
	}
	if len(reader.Shallows) > 0 {
		if err := r.addShallows(reader.Shallows); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return nil
}

// addShallows records the commits whose parents the clone lacks, so that
// the next fetch tells the server where the history stops.
func (r *repo) addShallows(hs []plumbing.Hash) error {
	have, err := r.store.Shallow()
	if err != nil {
		return fmt.Errorf("read shallow commits: %w", err)
	}
	for _, h := range hs {
		if !slices.Contains(have, h) {
			have = append(have, h)
		}
	}
	if err := r.store.SetShallow(have); err != nil {
		return fmt.Errorf("write shallow commits: %w", err)
	}
	return nil
}

// haves lists the local branch tips and some of their ancestors, so that the
// server sends only what is new.
func (r *repo) haves() []plumbing.Hash {
	seen := map[plumbing.Hash]bool{}
	iter, err := r.store.IterReferences()
	if err != nil {
		return nil
	}
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference || !ref.Name().IsBranch() || seen[ref.Hash()] {
			return nil
		}
		c, err := object.GetCommit(r.store, ref.Hash())
		if err != nil {
			return nil
		}
		n := 0
		_ = object.NewCommitPreorderIter(c, seen, nil).ForEach(func(c *object.Commit) error {
			seen[c.Hash] = true
			if n++; n >= maxHaves {
				return storer.ErrStop
			}
			return nil
		})
		return nil
	})
	out := make([]plumbing.Hash, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	return out
}

// plan is a commit ready to push, or the tip that already holds the change.
type plan struct {
	created bool
	at      plumbing.Hash
	branch  plumbing.ReferenceName
	commit  plumbing.Hash
	objects *memory.Storage
	hashes  []plumbing.Hash
	files   []string
}

// plan runs the edit on the base tip; when that changes nothing, the branch
// already holds the change. With a push branch that exists, the edit runs on
// its tip too, so that a re-run finds the change there instead of stacking a
// second commit, and a new commit goes on top of what is there.
func (r *repo) plan(ctx context.Context, req UpdateRequest, opts Options, baseTip, targetTip plumbing.Hash, separate bool) (plan, error) {
	now := opts.Now()
	p, err := r.edit(ctx, req, opts, now, baseTip)
	if err != nil || !p.created {
		p.branch = plumbing.NewBranchReferenceName(req.Branch)
		return p, err
	}
	if separate && !targetTip.IsZero() {
		p, err = r.edit(ctx, req, opts, now, targetTip)
		if err != nil || !p.created {
			p.branch = plumbing.NewBranchReferenceName(req.PushBranch)
			return p, err
		}
	}
	return p, nil
}

// edit runs the edit function on a commit's tree and, when files changed,
// builds the new trees and the commit in a memory store.
func (r *repo) edit(ctx context.Context, req UpdateRequest, opts Options, now time.Time, tip plumbing.Hash) (plan, error) {
	parent, err := object.GetCommit(r.store, tip)
	if err != nil {
		return plan{}, fmt.Errorf("read commit %s: %w", tip, err)
	}
	root, err := parent.Tree()
	if err != nil {
		return plan{}, fmt.Errorf("read tree of %s: %w", tip, err)
	}
	fs := newTreeFS(r.store, root)
	fs.maxFile = opts.MaxFileSize
	msg, err := runEdit(ctx, req, fs, history{tip: parent})
	if err != nil {
		return plan{}, fmt.Errorf("%w: %w", ErrEdit, err)
	}
	objs := memory.NewStorage()
	treeHash, changed, files, err := fs.writeTree(objs)
	if err != nil {
		return plan{}, fmt.Errorf("write tree: %w", err)
	}
	if !changed {
		return plan{at: tip}, nil
	}
	if strings.TrimSpace(msg) == "" {
		return plan{}, fmt.Errorf("%w: the edit changed files but returned no commit message", ErrEdit)
	}
	sig := object.Signature{Name: req.Author.Name, Email: req.Author.Email, When: now}
	commit := &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      msg,
		TreeHash:     treeHash,
		ParentHashes: []plumbing.Hash{tip},
	}
	if req.Signer != nil {
		unsigned := &plumbing.MemoryObject{}
		if err := commit.EncodeWithoutSignature(unsigned); err != nil {
			return plan{}, fmt.Errorf("encode commit: %w", err)
		}
		rd, err := unsigned.Reader()
		if err != nil {
			return plan{}, fmt.Errorf("encode commit: %w", err)
		}
		signature, err := req.Signer.Sign(rd)
		if err != nil {
			return plan{}, fmt.Errorf("sign commit: %w", err)
		}
		commit.PGPSignature = string(signature)
	}
	obj := objs.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plan{}, fmt.Errorf("encode commit: %w", err)
	}
	h, err := objs.SetEncodedObject(obj)
	if err != nil {
		return plan{}, fmt.Errorf("store commit: %w", err)
	}
	var hashes []plumbing.Hash
	for oh := range objs.ObjectStorage.Objects {
		hashes = append(hashes, oh)
	}
	return plan{created: true, commit: h, objects: objs, hashes: hashes, files: files}, nil
}

// runEdit runs the edit function and turns its panic into an error. The
// clone is intact then (the edit saw only the tree file system), so unlike a
// panic in the Git code it is kept.
func runEdit(ctx context.Context, req UpdateRequest, fs *treeFS, h History) (msg string, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = "", panicError(ctx, "edit of "+SanitizeURL(req.URL), p, append(req.Auth.secrets(), urlSecrets(req.URL)...))
		}
	}()
	return req.Edit(fs, h)
}

// errMoved: the branch is no longer where the commit was built.
var errMoved = errors.New("branch moved")

// push sends the new objects and asks the remote to move target from old
// (zero: create it) to the new commit. The remote applies the update only if
// target still points at old.
func (r *repo) push(ctx context.Context, s session, target plumbing.ReferenceName, old plumbing.Hash, p plan) error {
	sess, err := openSession(ctx, s.ep, func() (transport.ReceivePackSession, error) {
		return s.tr.NewReceivePackSession(s.ep, s.auth)
	})
	if err != nil {
		return classify("push", err)
	}
	defer closeSession(ctx, sess)
	caps := capability.NewList()
	if s.ep.Protocol == "http" || s.ep.Protocol == "https" {
		// Smart HTTP is stateless: the push needs no ref advertisement
		// first, which saves a round trip and a server process. Every Git
		// server since 1.6 speaks these; the old value in the command
		// is still checked by the server under the ref lock.
		_ = caps.Set(capability.ReportStatus)
		_ = caps.Set(capability.Sideband64k)
	} else {
		ar, err := sess.AdvertisedReferencesContext(ctx)
		if err != nil {
			return classify("push", err)
		}
		refs, err := ar.AllReferences()
		if err != nil {
			return fmt.Errorf("push: read advertised refs: %w", err)
		}
		current := plumbing.ZeroHash
		if ref, err := refs.Reference(target); err == nil {
			current = ref.Hash()
		}
		if current != old {
			return errMoved
		}
		for _, c := range []capability.Capability{capability.ReportStatus, capability.Sideband64k, capability.Sideband} {
			if ar.Capabilities.Supports(c) && !(c == capability.Sideband && caps.Supports(capability.Sideband64k)) {
				_ = caps.Set(c)
			}
		}
	}
	var pack bytes.Buffer
	// Window 0: no deltas, so the pack never needs ofs-delta support.
	enc := packfile.NewEncoder(&pack, p.objects, false)
	if _, err := enc.Encode(p.hashes, 0); err != nil {
		return fmt.Errorf("push: encode pack: %w", err)
	}
	req := packp.NewReferenceUpdateRequest()
	// Side-band keeps a hook's messages out of the status report.
	req.Capabilities = caps
	req.Commands = []*packp.Command{{Name: target, Old: old, New: p.commit}}
	req.Packfile = io.NopCloser(&pack)
	rs, err := sess.ReceivePack(ctx, req)
	if rs != nil {
		if rs.UnpackStatus != "" && rs.UnpackStatus != "ok" {
			return fmt.Errorf("push: remote could not unpack: %s", rs.UnpackStatus)
		}
		for _, cs := range rs.CommandStatuses {
			if cs.Status != "ok" {
				return &RejectedError{Ref: cs.ReferenceName.Short(), Reason: cs.Status}
			}
		}
	}
	if err != nil {
		return classify("push", err)
	}
	return nil
}

// adopt stores the pushed objects in the clone and moves its branch, so the
// next fetch need not download what we wrote.
func (r *repo) adopt(target plumbing.ReferenceName, p plan) error {
	for _, h := range p.hashes {
		obj, err := p.objects.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return fmt.Errorf("adopt pushed objects: %w", err)
		}
		if _, err := r.store.SetEncodedObject(obj); err != nil {
			return fmt.Errorf("adopt pushed objects: %w", err)
		}
	}
	if err := r.store.SetReference(plumbing.NewHashReference(target, p.commit)); err != nil {
		return fmt.Errorf("adopt pushed commit: %w", err)
	}
	return nil
}

// classify marks authentication failures with ErrAuth, keeping the cause.
func classify(op string, err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(err.Error(), "unable to authenticate"),
		strings.Contains(err.Error(), "knownhosts"):
		return fmt.Errorf("%s: %w: %w", op, ErrAuth, err)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("%s: %w: the repository has no branches yet", op, ErrBranchNotFound)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s: %w: %w", op, ErrRepositoryNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
