package gitrepo

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// plan is a commit ready to push, or the tip that already holds the change.
type plan struct {
	// edit is what the Edit run on the tip (at, or the commit's parent)
	// returned.
	edit    EditResult
	created bool
	at      plumbing.Hash
	branch  plumbing.ReferenceName
	commit  plumbing.Hash
	objects *memory.Storage
	hashes  []plumbing.Hash
	files   []string
}

// newPlan builds the commit of an edited tree on the tip the edit saw, in the
// edit's memory store. When no file changed, the plan is that tip: it
// already holds the change.
func newPlan(e edited, req UpdateRequest, now time.Time) (plan, error) {
	if !e.changed {
		return plan{at: e.tip, edit: e.result}, nil
	}
	if strings.TrimSpace(e.result.Message) == "" {
		return plan{}, fmt.Errorf("%w: the edit changed files but returned no commit message", ErrEdit)
	}
	sig := object.Signature{Name: req.Author.Name, Email: req.Author.Email, When: now}
	commit := &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      e.result.Message,
		TreeHash:     e.tree,
		ParentHashes: []plumbing.Hash{e.tip},
	}
	if req.Signer != nil {
		if err := sign(commit, req.Signer); err != nil {
			return plan{}, err
		}
	}
	h, err := storeCommit(e.objects, commit)
	if err != nil {
		return plan{}, err
	}
	var hashes []plumbing.Hash
	for oh := range e.objects.ObjectStorage.Objects {
		hashes = append(hashes, oh)
	}
	return plan{edit: e.result, created: true, commit: h, objects: e.objects, hashes: hashes, files: e.files}, nil
}

// storeCommit encodes the commit into objs and returns its hash.
func storeCommit(objs *memory.Storage, commit *object.Commit) (plumbing.Hash, error) {
	obj := objs.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	h, err := objs.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store commit: %w", err)
	}
	return h, nil
}
