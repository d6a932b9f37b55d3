package gitops

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/atzedevries/canaryop/gitops/gitrepo"
)

// DefaultMaxOutcomesPerCommit is how many outcomes of one branch share a
// commit at most (Options.MaxOutcomesPerCommit).
const DefaultMaxOutcomesPerCommit = 50

// outcomeSeparator comes before each outcome's message in a shared commit.
const outcomeSeparator = "---"

// coalescer turns the commit-mode write-backs that wait for the same
// branch into one commit per flush (group commit): the first outcome for a
// branch is flushed at once; outcomes that arrive while a flush runs wait
// and go together in the next one, up to max per commit. A bad base image
// rolled out to 100 apps of one repository thus costs a few pushes instead
// of 100 writers racing one branch with compare-and-swap retries. Each
// outcome keeps its own edit, its compare-and-swap and its result
// (gitrepo.UpdateBatch).
type coalescer struct {
	cache *gitrepo.Cache
	max   int
	mu    sync.Mutex
	// queues holds the branches with a flush running.
	queues map[batchKey]*branchQueue
	// flushes counts the batches sent to the cache, for tests.
	flushes atomic.Int64
}

// batchKey is what outcomes must share to go in one commit: the branch and
// the credentials that write it (author and signer are the writer's).
type batchKey struct {
	url, branch, secret string
}

type branchQueue struct {
	pending []*waiter
}

type waiter struct {
	ctx  context.Context
	req  gitrepo.UpdateRequest
	done chan gitrepo.BatchResult
}

func newCoalescer(cache *gitrepo.Cache, max int) *coalescer {
	return &coalescer{cache: cache, max: max, queues: map[batchKey]*branchQueue{}}
}

// update is Cache.Update for a commit-mode write-back, shared with the other
// outcomes waiting for the same branch.
func (c *coalescer) update(ctx context.Context, key batchKey, req gitrepo.UpdateRequest) (gitrepo.Commit, error) {
	w := &waiter{ctx: ctx, req: req, done: make(chan gitrepo.BatchResult, 1)}
	c.mu.Lock()
	q, running := c.queues[key]
	if !running {
		q = &branchQueue{}
		c.queues[key] = q
	}
	q.pending = append(q.pending, w)
	c.mu.Unlock()
	if !running {
		go c.drain(key, q)
	}
	select {
	case r := <-w.done:
		return r.Commit, r.Err
	case <-ctx.Done():
		c.forget(q, w)
		return gitrepo.Commit{}, fmt.Errorf("%w: waiting for the write-back of other outcomes to %s: %w", gitrepo.ErrTimeout, key.branch, ctx.Err())
	}
}

// forget takes a waiter that gave up out of the queue, unless a flush has
// taken it already (its result is then dropped; a retry finds the outcome
// in Git).
func (c *coalescer) forget(q *branchQueue, w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range q.pending {
		if p == w {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			return
		}
	}
}

// drain flushes the queue of one branch until no outcome waits.
func (c *coalescer) drain(key batchKey, q *branchQueue) {
	for {
		batch := c.take(key, q)
		if len(batch) == 0 {
			return
		}
		c.flush(batch)
	}
}

// take removes the next batch from the queue; with none left it retires
// the queue, so the next outcome starts a flush of its own.
func (c *coalescer) take(key batchKey, q *branchQueue) []*waiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch []*waiter
	for len(q.pending) > 0 && len(batch) < c.max {
		w := q.pending[0]
		q.pending = q.pending[1:]
		if w.ctx.Err() == nil {
			batch = append(batch, w)
		}
	}
	if len(batch) == 0 {
		delete(c.queues, key)
	}
	return batch
}

// flush writes one batch and hands every waiter its own result.
func (c *coalescer) flush(batch []*waiter) {
	c.flushes.Add(1)
	ctx, cancel := batchContext(batch)
	defer cancel()
	edits := make([]gitrepo.Edit, len(batch))
	for i, w := range batch {
		edits[i] = w.req.Edit
	}
	results, err := c.cache.UpdateBatch(ctx, batch[0].req, edits, combinedMessage)
	for i, w := range batch {
		if err != nil {
			w.done <- gitrepo.BatchResult{Err: err}
			continue
		}
		w.done <- results[i]
	}
}

// batchContext lives as long as one waiter of the batch still waits: it
// keeps the first waiter's values (its logger), and ends when the last
// waiter's context ends, so a flush neither outlives all who wait for it
// nor ends for one of them giving up. Each write-back's own deadline
// (--write-back-timeout) bounds its wait; the Cache bounds the network work.
func batchContext(batch []*waiter) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int32
	left.Store(int32(len(batch)))
	stops := make([]func() bool, 0, len(batch))
	for _, w := range batch {
		stops = append(stops, context.AfterFunc(w.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// combinedMessage is the message of a commit that holds several outcomes: a
// subject that counts them, then each outcome's own message (its subject,
// its analysis and its trailer block) as it would be alone, so `git log
// --grep 'Canaryop-App: shop/web'` finds the outcome either way.
func combinedMessage(messages []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "canaryop: write back %d outcomes\n\n", len(messages))
	for _, m := range messages {
		subject, _, _ := strings.Cut(m, "\n")
		fmt.Fprintf(&b, "- %s\n", subject)
	}
	for _, m := range messages {
		b.WriteString("\n")
		b.WriteString(outcomeSeparator)
		b.WriteString("\n\n")
		b.WriteString(strings.TrimRight(m, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}
