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
	"strings"
	"sync"
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
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Defaults of Options.
const (
	DefaultMaxAttempts = 8
	DefaultBackoff     = 50 * time.Millisecond
	DefaultMaxPacks    = 64
	maxBackoff         = 5 * time.Second
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
}

// Cache keeps the clones and serialises updates per repository.
type Cache struct {
	opts  Options
	mu    sync.Mutex
	repos map[string]*repo
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
	return &Cache{opts: opts, repos: map[string]*repo{}}, nil
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
// URL run one at a time. Errors never contain a credential.
func (c *Cache) Update(ctx context.Context, req UpdateRequest) (Commit, error) {
	if err := req.validate(); err != nil {
		return Commit{}, err
	}
	url := SanitizeURL(req.URL)
	secrets := append(req.Auth.secrets(), urlSecrets(req.URL)...)
	r := c.repo(url)
	r.mu.Lock()
	defer r.mu.Unlock()
	res, err := c.update(ctx, r, url, req)
	if err == nil {
		r.compact(c.opts.MaxPacks)
	}
	if err != nil && !errors.Is(err, ErrEdit) {
		// Edit errors come from our own manifest code and never carry a
		// credential; everything else may quote the transport's words.
		err = redact(err, secrets...)
	}
	return res, err
}

// repo returns the per-URL state, creating it on first use.
func (c *Cache) repo(url string) *repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.repos[url]
	if !ok {
		sum := sha256.Sum256([]byte(url))
		r = &repo{path: filepath.Join(c.opts.Dir, "repos", hex.EncodeToString(sum[:12]))}
		c.repos[url] = r
	}
	return r
}

// Path returns the directory of the bare clone of a repository URL (it may
// not exist yet). Tests and tools read it with the git CLI.
func (c *Cache) Path(url string) string {
	return c.repo(SanitizeURL(url)).path
}

type repo struct {
	mu    sync.Mutex
	path  string
	store *filesystem.Storage
}

// open opens the bare clone, creating an empty one when there is none (the
// first fetch then brings the whole history) and starting over when the
// directory holds no usable repository.
func (r *repo) open() error {
	if r.store != nil {
		return nil
	}
	st := filesystem.NewStorage(osfs.New(r.path), cache.NewObjectLRUDefault())
	if _, err := git.Open(st, nil); err == nil {
		r.store = st
		return nil
	}
	if err := os.RemoveAll(r.path); err != nil {
		return fmt.Errorf("reset clone: %w", err)
	}
	st = filesystem.NewStorage(osfs.New(r.path), cache.NewObjectLRUDefault())
	if _, err := git.Init(st, nil); err != nil {
		return fmt.Errorf("init clone: %w", err)
	}
	r.store = st
	return nil
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
	r.store = nil
	// A failed removal is healed by open, which resets what it cannot use.
	_ = os.RemoveAll(r.path)
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
	tr, err := client.NewClient(ep)
	if err != nil {
		return Commit{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
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
		tips, err := r.fetch(ctx, s, base, target)
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
		p, err := r.plan(req, c.opts.Now(), baseTip, old, target != base)
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
func (r *repo) fetch(ctx context.Context, s session, names ...plumbing.ReferenceName) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	sess, err := s.tr.NewUploadPackSession(s.ep, s.auth)
	if err != nil {
		return nil, classify("fetch", err)
	}
	defer sess.Close()
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
		if err := r.download(ctx, sess, req); err != nil {
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

func (r *repo) download(ctx context.Context, sess transport.UploadPackSession, req *packp.UploadPackRequest) (err error) {
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
	if err := packfile.UpdateObjectStorage(r.store, pack); err != nil {
		return fmt.Errorf("fetch: store pack: %w", err)
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
func (r *repo) plan(req UpdateRequest, now time.Time, baseTip, targetTip plumbing.Hash, separate bool) (plan, error) {
	p, err := r.edit(req, now, baseTip)
	if err != nil || !p.created {
		p.branch = plumbing.NewBranchReferenceName(req.Branch)
		return p, err
	}
	if separate && !targetTip.IsZero() {
		p, err = r.edit(req, now, targetTip)
		if err != nil || !p.created {
			p.branch = plumbing.NewBranchReferenceName(req.PushBranch)
			return p, err
		}
	}
	return p, nil
}

// edit runs the edit function on a commit's tree and, when files changed,
// builds the new trees and the commit in a memory store.
func (r *repo) edit(req UpdateRequest, now time.Time, tip plumbing.Hash) (plan, error) {
	parent, err := object.GetCommit(r.store, tip)
	if err != nil {
		return plan{}, fmt.Errorf("read commit %s: %w", tip, err)
	}
	root, err := parent.Tree()
	if err != nil {
		return plan{}, fmt.Errorf("read tree of %s: %w", tip, err)
	}
	fs := newTreeFS(r.store, root)
	msg, err := req.Edit(fs, history{tip: parent})
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

// errMoved: the branch is no longer where the commit was built.
var errMoved = errors.New("branch moved")

// push sends the new objects and asks the remote to move target from old
// (zero: create it) to the new commit. The remote applies the update only if
// target still points at old.
func (r *repo) push(ctx context.Context, s session, target plumbing.ReferenceName, old plumbing.Hash, p plan) error {
	sess, err := s.tr.NewReceivePackSession(s.ep, s.auth)
	if err != nil {
		return classify("push", err)
	}
	defer sess.Close()
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
