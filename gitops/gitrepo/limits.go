package gitrepo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-logr/logr"
)

// limits are the bounds one fetch is held to.
type limits struct {
	// budget is how many pack bytes the fetch may bring: MaxRepoSize less
	// what the clone holds when the pack starts.
	budget int64
	// maxRepo is MaxRepoSize, for the message.
	maxRepo int64
	// maxObject bounds the inflated size of one object (or the result of a
	// delta): go-git's pack parser holds each object in memory whole.
	maxObject int64
	// maxObjects bounds the objects of one pack: the parser keeps an
	// index entry for each in memory.
	maxObjects uint32
}

// limits are the bounds of a fetch; download sets the budget.
func (c *Cache) limits() limits {
	return limits{
		maxRepo:    c.opts.MaxRepoSize,
		maxObject:  c.opts.MaxObjectSize,
		maxObjects: uint32(c.opts.MaxObjects),
	}
}

// holdBack is how many bytes at the end of a pack the guard keeps until the
// checker's verdict: the SHA-1 trailer and one more. go-git's parser goes on
// to resolve every object when the stream ends exactly before the trailer,
// but fails at once when the last object is cut short.
const holdBack = 20 + 1

// packGuard passes a pack stream on to go-git while a second reader checks
// it, and fails the stream when it brings more bytes than the budget or
// declares an object or an object count the limits do not allow.
//
// go-git's PackWriter parses the pack as it is written, and that parse is
// cheap until the whole pack has arrived; then it resolves every object in
// memory. So the guard holds back the pack's last bytes until the checker
// has seen every object header: a pack that fails the check never reaches
// that phase. The checker reads inflated data only to
// find the object boundaries and the sizes a delta declares, and keeps none
// of it.
type packGuard struct {
	src     io.Reader
	lim     limits
	n       int64
	buf     []byte
	held    int
	eof     bool
	err     error
	check   *io.PipeWriter
	verdict chan error
	judged  bool
}

func newPackGuard(src io.Reader, lim limits) *packGuard {
	pr, pw := io.Pipe()
	g := &packGuard{src: src, lim: lim, buf: make([]byte, 32<<10), check: pw, verdict: make(chan error, 1)}
	go func() {
		err := checkPack(pr, lim)
		if err == nil {
			// Read the trailer and anything after it, so the guard's
			// writes never block on a reader that is gone.
			_, err = io.Copy(io.Discard, pr)
		}
		if err == nil {
			_ = pr.Close()
		} else {
			_ = pr.CloseWithError(err)
		}
		g.verdict <- err
	}()
	return g
}

func (g *packGuard) fail(err error) (int, error) {
	g.err = err
	g.check.CloseWithError(err)
	return 0, err
}

// judgement waits for the checker's result; it is read at most once.
func (g *packGuard) judgement() error {
	if !g.judged {
		g.judged = true
		if err := <-g.verdict; err != nil {
			g.err = err
		}
	}
	return g.err
}

func (g *packGuard) Read(p []byte) (int, error) {
	for {
		switch {
		case g.err != nil:
			return 0, g.err
		case len(p) == 0:
			return 0, nil
		case g.held > holdBack || (g.eof && g.held > 0):
			emit := g.held
			if !g.eof {
				emit -= holdBack
			}
			n := copy(p, g.buf[:emit])
			copy(g.buf, g.buf[n:g.held])
			g.held -= n
			return n, nil
		case g.eof:
			return 0, io.EOF
		}
		m, err := g.src.Read(g.buf[g.held:])
		if m > 0 {
			g.n += int64(m)
			if g.n > g.lim.budget {
				return g.fail(&limitError{ErrRepoTooLarge, "repository exceeds " + mib(g.lim.maxRepo)})
			}
			if _, werr := g.check.Write(g.buf[g.held : g.held+m]); werr != nil {
				// The checker stopped early: its verdict says why.
				g.check.CloseWithError(werr)
				if verr := g.judgement(); verr != nil {
					return 0, verr
				}
				return g.fail(werr)
			}
			g.held += m
		}
		switch {
		case errors.Is(err, io.EOF):
			_ = g.check.Close()
			if verr := g.judgement(); verr != nil {
				return 0, verr
			}
			g.eof = true
		case err != nil:
			return g.fail(err)
		}
	}
}

// close stops the checker (when go-git stopped reading early) and returns
// the guard's own error, if any.
func (g *packGuard) close() error {
	if !g.judged {
		g.check.CloseWithError(errors.New("pack reader closed"))
		g.judged = true
		if err := <-g.verdict; err != nil && g.err == nil && errors.Is(err, ErrRepoTooLarge) {
			g.err = err
		}
	}
	return g.err
}

// checkPack reads a pack and fails on the first object, or object count,
// that the limits do not allow. It keeps nothing it reads.
func checkPack(r io.Reader, lim limits) error {
	cr := &countingReader{r: r}
	s := packfile.NewScanner(cr)
	_, count, err := s.Header()
	if err != nil {
		if cr.n == 0 {
			// No pack at all; go-git reports that itself.
			return nil
		}
		return fmt.Errorf("read pack header: %w", err)
	}
	if count > lim.maxObjects {
		return &limitError{ErrRepoTooLarge, fmt.Sprintf("repository exceeds %d objects (the pack holds %d)", lim.maxObjects, count)}
	}
	tooBig := func(n int64) error {
		return &limitError{ErrRepoTooLarge, fmt.Sprintf("repository holds an object of %s, more than the %s limit", mib(n), mib(lim.maxObject))}
	}
	for range count {
		oh, err := s.NextObjectHeader()
		if err != nil {
			return fmt.Errorf("read pack: %w", err)
		}
		if oh.Length > lim.maxObject {
			return tooBig(oh.Length)
		}
		if !oh.Type.IsDelta() {
			if _, _, err := s.NextObject(io.Discard); err != nil {
				return fmt.Errorf("read pack: %w", err)
			}
			continue
		}
		// A small delta can describe a huge object; its header says how
		// big the base and the result are.
		var dh deltaHeader
		if _, _, err := s.NextObject(&dh); err != nil {
			return fmt.Errorf("read pack: %w", err)
		}
		src, target, ok := dh.sizes()
		if !ok {
			return errors.New("read pack: malformed delta header")
		}
		if target > lim.maxObject || src > lim.maxObject {
			return tooBig(max(target, src))
		}
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// deltaHeader keeps the first bytes of a delta's data, which hold the base
// and result sizes as two variable-length integers, and discards the rest.
type deltaHeader struct {
	b [20]byte
	n int
}

func (d *deltaHeader) Write(p []byte) (int, error) {
	d.n += copy(d.b[d.n:], p)
	return len(p), nil
}

func (d *deltaHeader) sizes() (src, target int64, ok bool) {
	b := d.b[:d.n]
	src, k := uvarint(b)
	if k == 0 {
		return 0, 0, false
	}
	target, k2 := uvarint(b[k:])
	return src, target, k2 > 0
}

// uvarint decodes Git's delta size encoding (seven bits a byte, least
// significant first); it returns the bytes used, 0 when malformed.
func uvarint(b []byte) (int64, int) {
	var v uint64
	for i, c := range b {
		if i >= 9 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return int64(v), i + 1
		}
	}
	return 0, 0
}

// dirSize is the bytes of the files under dir; 0 when dir does not exist.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed while walking
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// removeTempPacks deletes what an interrupted fetch left in the clone: go-git
// keeps its temporary pack when the pack stream fails.
func (r *repo) removeTempPacks() {
	tmp, _ := filepath.Glob(filepath.Join(r.path, "objects", "pack", "tmp_pack_*"))
	for _, f := range tmp {
		_ = os.Remove(f)
	}
}

// evict removes whole clones, least recently used first, until the clones
// together take at most MaxCacheSize bytes. Clones in use by an Update are
// skipped; the clone of the Update that just ended is the most recently used
// and goes last. Clones left by an earlier process count too.
func (c *Cache) evict(ctx context.Context) {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	dir := filepath.Join(c.opts.Dir, "repos")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type clone struct {
		r    *repo
		used int64
	}
	var clones []clone
	var total int64
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r := c.repoAt(filepath.Join(dir, e.Name()))
		if r.size.Load() < 0 {
			// First sight of a clone from an earlier process.
			if !r.tryAcquire() {
				continue
			}
			r.measure()
			if r.used.Load() == 0 {
				if info, err := e.Info(); err == nil {
					r.used.Store(info.ModTime().UnixNano())
				}
			}
			r.release()
		}
		total += r.size.Load()
		// A snapshot: an Update ending meanwhile must not change the
		// order under the sort.
		clones = append(clones, clone{r, r.used.Load()})
	}
	if total <= c.opts.MaxCacheSize {
		return
	}
	slices.SortFunc(clones, func(a, b clone) int { return cmp.Compare(a.used, b.used) })
	log := logr.FromContextOrDiscard(ctx)
	for _, cl := range clones {
		r := cl.r
		if total <= c.opts.MaxCacheSize {
			return
		}
		if !r.tryAcquire() {
			continue // in use; its Update measures it when it ends
		}
		freed := r.size.Load()
		r.drop()
		r.release()
		total -= freed
		log.V(1).Info("Evicted a clone from the Git cache", "clone", filepath.Base(r.path), "bytes", freed,
			"lastUsed", time.Unix(0, r.used.Load()).UTC(), "cacheBytes", total, "maxCacheBytes", c.opts.MaxCacheSize)
	}
}
