package gitrepo

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

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
