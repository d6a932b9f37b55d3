package gitrepo

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// repo is the state of one clone: its lock, its open store, and what
// eviction needs to know (size, last use).
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
