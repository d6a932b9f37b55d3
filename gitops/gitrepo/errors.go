package gitrepo

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidRequest means the UpdateRequest cannot be acted on (missing
	// URL, branch or edit function, unsupported protocol).
	ErrInvalidRequest = errors.New("invalid git update request")
	// ErrBranchNotFound means the remote has no such branch.
	ErrBranchNotFound = errors.New("branch not found on remote")
	// ErrRepositoryNotFound means the remote has no such repository (or
	// hides it from these credentials).
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrAuth means the credentials are unusable or were refused.
	ErrAuth = errors.New("git authentication failed")
	// ErrConflict means every push attempt lost a race with another writer.
	// It is transient: a later try may land.
	ErrConflict = errors.New("push kept losing the race with other writers")
	// ErrEdit marks an error returned by the edit function; its cause is
	// wrapped next to it.
	ErrEdit = errors.New("edit failed")
)

// RejectedError is the remote refusing a push for a reason other than a
// moved branch, such as a protected branch or a pre-receive hook. Retrying
// does not help.
type RejectedError struct {
	Ref    string
	Reason string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("remote rejected push to %s: %s", e.Ref, e.Reason)
}
