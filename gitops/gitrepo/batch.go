package gitrepo

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// BatchResult is one edit's share of an UpdateBatch: the commit that holds
// its change (Created when the change is in the new commit; Edit is its own
// result), or its own error.
type BatchResult struct {
	Commit Commit
	Err    error
}

// Combine makes the commit message of a batch from the messages of the
// edits that changed files, in order; it is called with two or more (one
// message is used as it is).
type Combine func(messages []string) string

// UpdateBatch makes one commit of several edits of one branch: the edits run
// one after another on the same tree, each seeing what the ones before it
// wrote, and the commit is pushed once. Each edit keeps its own checks and
// its own result: an edit that fails (or panics) has its writes undone and
// gets its error, while the others are committed. When the branch moved
// under the push, every edit runs again on the new tip, as in Update. When
// the remote refuses the push (a hook, a protection), the edits are tried
// one commit each, so that one refused change does not hold back the
// others. req.Edit is ignored; req.PushBranch must be empty.
//
// The returned error is for what failed the whole batch before any edit
// could be judged on its own (the fetch, the request); then no result is
// returned.
func (c *Cache) UpdateBatch(ctx context.Context, req UpdateRequest, edits []Edit, combine Combine) ([]BatchResult, error) {
	if req.PushBranch != "" {
		return nil, fmt.Errorf("%w: a batch pushes to its branch, not to a push branch", ErrInvalidRequest)
	}
	secrets := append(req.Auth.secrets(), urlSecrets(req.URL)...)
	req.Edit = func(fsys filesys.FileSystem, hist History) (EditResult, error) {
		return runBatch(ctx, req.URL, secrets, edits, combine, fsys, hist), nil
	}
	commit, err := c.Update(ctx, req)
	if err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) && len(edits) > 1 {
			return c.updateEach(ctx, req, edits), nil
		}
		return nil, err
	}
	runs, _ := commit.Edit.Value.([]batchRun)
	if len(runs) != len(edits) {
		return nil, errors.New("batch edit did not run") // Update ran the edit at least once
	}
	out := make([]BatchResult, len(edits))
	for i, run := range runs {
		if run.err != nil {
			out[i].Err = run.err
			continue
		}
		c := commit
		c.Created = commit.Created && run.changed
		if !c.Created {
			c.Files = nil
		}
		c.Edit = run.result
		out[i].Commit = c
	}
	return out, nil
}

// updateEach runs every edit in an Update of its own.
func (c *Cache) updateEach(ctx context.Context, req UpdateRequest, edits []Edit) []BatchResult {
	out := make([]BatchResult, len(edits))
	for i, e := range edits {
		r := req
		r.Edit = e
		out[i].Commit, out[i].Err = c.Update(ctx, r)
	}
	return out
}

// batchRun is what one edit of a batch did in one run of the batch.
type batchRun struct {
	result  EditResult
	err     error
	changed bool
}

// runBatch runs the edits in order on fsys, undoing the writes of each one
// that fails, and returns the combined message with every edit's run as
// Value.
func runBatch(ctx context.Context, url string, secrets []string, edits []Edit, combine Combine, fsys filesys.FileSystem, hist History) EditResult {
	runs := make([]batchRun, len(edits))
	var messages []string
	for i, edit := range edits {
		j := newJournal(fsys)
		res, err := runOne(ctx, url, secrets, edit, j, hist)
		if err == nil && j.changed() && res.Message == "" {
			err = errors.New("the edit changed files but gave no commit message")
		}
		if err != nil {
			if uerr := j.undo(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
			}
			runs[i].err = redact(fmt.Errorf("%w: %w", ErrEdit, err), secrets...)
			continue
		}
		runs[i] = batchRun{result: res, changed: j.changed()}
		if runs[i].changed {
			messages = append(messages, res.Message)
		}
	}
	msg := ""
	switch {
	case len(messages) == 1:
		msg = messages[0]
	case len(messages) > 1:
		msg = combine(messages)
	}
	return EditResult{Message: msg, Value: runs}
}

// runOne runs one edit of a batch and turns its panic into its own error.
func runOne(ctx context.Context, url string, secrets []string, edit Edit, fs filesys.FileSystem, h History) (res EditResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = EditResult{}, panicError(ctx, "edit of "+safetext.RedactURL(url), p, secrets)
		}
	}()
	return edit(fs, h)
}
