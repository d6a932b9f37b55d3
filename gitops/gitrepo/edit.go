package gitrepo

import (
	"context"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// Edit changes files in fsys, which shows the branch tip's tree rooted at the
// repository root, and returns the commit message with what it found. When
// the files end up byte-for-byte as they were, nothing is committed. An Edit
// may run more than once for one Update (each time the branch moved under
// it), each time on a fresh tree, so it must not depend on state left by an
// earlier run; the Update returns the result of the run its Commit holds.
type Edit func(fsys filesys.FileSystem, hist History) (EditResult, error)

// EditResult is what one run of an Edit returns.
type EditResult struct {
	// Message is the commit message; it may be empty only when the files
	// were left as they were.
	Message string
	// Value is the edit's own account of the run (what it found, what it
	// changed) for the caller of Update, which gets it back in
	// Commit.Edit. The Update never looks at it.
	Value any
}

// edited is what one run of the Edit left: the tree it changed, written to a
// memory store (nothing reaches the clone before the push lands), on the tip
// whose tree it saw.
type edited struct {
	tip    plumbing.Hash
	result EditResult
	// changed is false when the files ended up as they were.
	changed bool
	tree    plumbing.Hash
	objects *memory.Storage
	// files are the repository-relative paths that changed.
	files []string
}

// edit runs the edit function on a commit's tree, read lazily from the
// clone (see treeFS), and writes the blobs and trees that changed.
func (r *repo) edit(ctx context.Context, req UpdateRequest, maxFile int64, tip plumbing.Hash) (edited, error) {
	parent, err := object.GetCommit(r.store, tip)
	if err != nil {
		return edited{}, fmt.Errorf("read commit %s: %w", tip, err)
	}
	root, err := parent.Tree()
	if err != nil {
		return edited{}, fmt.Errorf("read tree of %s: %w", tip, err)
	}
	fs := newTreeFS(r.store, root)
	fs.maxFile = maxFile
	res, err := runEdit(ctx, req, fs, history{tip: parent})
	if err != nil {
		return edited{}, fmt.Errorf("%w: %w", ErrEdit, err)
	}
	objs := memory.NewStorage()
	treeHash, changed, files, err := fs.writeTree(objs)
	if err != nil {
		return edited{}, fmt.Errorf("write tree: %w", err)
	}
	return edited{tip: tip, result: res, changed: changed, tree: treeHash, objects: objs, files: files}, nil
}

// runEdit runs the edit function and turns its panic into an error. The
// clone is intact then (the edit saw only the tree file system), so unlike a
// panic in the Git code it is kept.
func runEdit(ctx context.Context, req UpdateRequest, fs *treeFS, h History) (res EditResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = EditResult{}, panicError(ctx, "edit of "+safetext.RedactURL(req.URL), p, append(req.Auth.secrets(), urlSecrets(req.URL)...))
		}
	}()
	return req.Edit(fs, h)
}
