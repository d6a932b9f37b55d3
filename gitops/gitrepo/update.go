package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// branches are the branch an Update reads and the one it pushes to: the
// same, unless the request names a push branch.
type branches struct {
	base, target plumbing.ReferenceName
}

func branchesOf(req UpdateRequest) branches {
	b := branches{base: plumbing.NewBranchReferenceName(req.Branch)}
	b.target = b.base
	if req.PushBranch != "" {
		b.target = plumbing.NewBranchReferenceName(req.PushBranch)
	}
	return b
}

// separate reports whether the commit goes to a branch of its own.
func (b branches) separate() bool { return b.target != b.base }

// refusal is a push the remote refused for a reason other than a moved
// branch, with the tip of the target branch the push was built on.
type refusal struct {
	err *RejectedError
	old plumbing.Hash
}

// update runs the phases of an Update in one direction, once per push
// attempt, and decides what a failed push means:
//
//	fetch (fetch.go)    the branch tips, their objects into the clone
//	edit (edit.go)      the Edit on the tip's tree (treefs.go): a changed tree
//	commit (commit.go)  the commit of that tree, signed, ready to push
//	push (push.go)      the commit sent; the branch moves only if still at the old tip
func (c *Cache) update(ctx context.Context, r *repo, url string, req UpdateRequest) (Commit, error) {
	s, err := c.session(url, req.Auth)
	if err != nil {
		return Commit{}, err
	}
	if err := r.open(); err != nil {
		return Commit{}, err
	}
	b := branchesOf(req)
	var last refusal
	for attempt := 1; ; attempt++ {
		baseTip, old, err := r.tips(ctx, s, c.limits(), b)
		if err != nil {
			return Commit{}, err
		}
		if last.err != nil && old == last.old {
			// Refused although the branch had not moved: a hook or a
			// branch protection said no, and will say no again.
			return Commit{}, last.err
		}
		p, err := r.plan(ctx, req, c.opts, baseTip, old, b.separate())
		if err != nil {
			return Commit{}, err
		}
		if !p.created {
			return Commit{SHA: p.at.String(), Branch: strings.TrimPrefix(p.branch.String(), "refs/heads/"), Attempts: attempt - 1, Edit: p.edit}, nil
		}
		err = r.push(ctx, s, b.target, old, p)
		if err == nil {
			if err := r.adopt(b.target, p); err != nil {
				return Commit{}, err
			}
			return Commit{SHA: p.commit.String(), Branch: strings.TrimPrefix(b.target.String(), "refs/heads/"), Created: true, Files: p.files, Attempts: attempt, Edit: p.edit}, nil
		}
		if last, err = retryable(err, old); err != nil {
			return Commit{}, err
		}
		if attempt >= c.opts.MaxAttempts {
			return Commit{}, fmt.Errorf("%w: %d attempts on %s", ErrConflict, attempt, b.target.Short())
		}
		if err := c.wait(ctx, attempt); err != nil {
			return Commit{}, err
		}
	}
}

// tips fetches both branches and returns their tips: the base branch must
// exist; the target's tip is zero while it does not.
func (r *repo) tips(ctx context.Context, s session, lim limits, b branches) (base, target plumbing.Hash, err error) {
	tips, err := r.fetch(ctx, s, lim, b.base, b.target)
	if err != nil {
		return plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	base, ok := tips[b.base]
	if !ok {
		return plumbing.ZeroHash, plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrBranchNotFound, strings.TrimPrefix(b.base.String(), "refs/heads/"))
	}
	return base, tips[b.target], nil
}

// retryable sorts out a failed push: a lost race (the branch moved) and a
// refusal are worth another attempt, after a fresh fetch; the refusal is
// returned so that the next attempt can tell whether the branch moved since.
// Any other error ends the Update.
func retryable(err error, old plumbing.Hash) (refusal, error) {
	var rej *RejectedError
	switch {
	case errors.As(err, &rej):
		return refusal{err: rej, old: old}, nil
	case errors.Is(err, errMoved):
		return refusal{}, nil
	}
	return refusal{}, err
}

// plan runs the edit on the base tip; when that changes nothing, the branch
// already holds the change. With a push branch that exists, the edit runs on
// its tip too, so that a re-run finds the change there instead of stacking a
// second commit, and a new commit goes on top of what is there.
func (r *repo) plan(ctx context.Context, req UpdateRequest, opts Options, baseTip, targetTip plumbing.Hash, separate bool) (plan, error) {
	now := opts.Now()
	p, err := r.commitEdit(ctx, req, opts, now, baseTip)
	if err != nil || !p.created {
		p.branch = plumbing.NewBranchReferenceName(req.Branch)
		return p, err
	}
	if separate && !targetTip.IsZero() {
		p, err = r.commitEdit(ctx, req, opts, now, targetTip)
		if err != nil || !p.created {
			p.branch = plumbing.NewBranchReferenceName(req.PushBranch)
			return p, err
		}
	}
	return p, nil
}

// commitEdit runs the edit on a commit's tree and, when files changed,
// builds the commit of the new tree.
func (r *repo) commitEdit(ctx context.Context, req UpdateRequest, opts Options, now time.Time, tip plumbing.Hash) (plan, error) {
	e, err := r.edit(ctx, req, opts.MaxFileSize, tip)
	if err != nil {
		return plan{}, err
	}
	return newPlan(e, req, now)
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
