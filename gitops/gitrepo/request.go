package gitrepo

import (
	"fmt"
	"strings"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// Author names the author and committer of a commit.
type Author struct {
	Name  string
	Email string
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
	// Edit is what the Edit returned on the run SHA holds: the run that
	// built the new commit, or the one that found SHA already as wanted.
	Edit EditResult
}

// String describes the request without credentials, for logs.
func (r UpdateRequest) String() string {
	s := fmt.Sprintf("update %s branch %s", safetext.RedactURL(r.URL), r.Branch)
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
