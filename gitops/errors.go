package gitops

import (
	"errors"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/github"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/gitops/manifest"
)

var (
	// ErrNoOutcome: status.writeBack (or its pull request URL) is empty.
	ErrNoOutcome = errors.New("no outcome to write back")
	// ErrRepositoryUnknown: neither spec.gitops nor Argo CD say where the
	// manifest lives.
	ErrRepositoryUnknown = errors.New("git repository of the manifest is unknown")
	// ErrNoCredentials: no credential Secret covers the repository.
	ErrNoCredentials = credentials.ErrNoCredentials
	// ErrNotPermitted: the admin's policy does not let this app write where
	// it asks to (credential scope, Argo CD provenance, write mode).
	ErrNotPermitted = errors.New("write-back not permitted")
	// ErrPanic: the write-back stopped on a panic the Git layer recovered;
	// the controller counts it as an interrupted attempt.
	ErrPanic = gitrepo.ErrPanic
)

// Error is a write-back error with the condition reason the controller puts
// on the WriteBack condition, and whether a person must act (Stalled) rather
// than a retry fixing it. Its message never holds a credential.
type Error struct {
	reason  string
	stalled bool
	err     error
}

func (e *Error) Error() string { return e.err.Error() }
func (e *Error) Unwrap() error { return e.err }

// Reason is a v1 condition reason: NoCredentials, RepositoryUnknown,
// InvalidSpec or WriteBackFailed.
func (e *Error) Reason() string { return e.reason }

// Stalled reports whether only a person can fix the cause (a credential,
// the spec, the manifest in Git, a branch protection).
func (e *Error) Stalled() bool { return e.stalled }

func stalled(reason string, err error) error {
	return &Error{reason: reason, stalled: true, err: err}
}

// RetryAfter reports how long the forge asked to wait when err is a rate
// limit (GitHub's Retry-After or X-RateLimit-Reset).
func RetryAfter(err error) (time.Duration, bool) {
	if rl, ok := errors.AsType[*github.RateLimitedError](err); ok {
		return rl.RetryAfter, true
	}
	return 0, false
}

// IsStalled reports whether err needs a person rather than a retry.
func IsStalled(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.stalled
}

// classify turns the errors of the packages below into Errors.
func classify(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var rejected *gitrepo.RejectedError
	switch {
	case errors.Is(err, gitrepo.ErrAuth), errors.Is(err, github.ErrAuth),
		errors.Is(err, credentials.ErrInvalidCredentials):
		return stalled(v1.ReasonNoCredentials, err)
	case errors.Is(err, gitrepo.ErrBranchNotFound), errors.Is(err, github.ErrNotFound),
		errors.Is(err, github.ErrInvalidRepo), errors.Is(err, gitrepo.ErrRepositoryNotFound),
		errors.Is(err, github.ErrForeignHost):
		return stalled(v1.ReasonRepositoryUnknown, err)
	case errors.Is(err, gitrepo.ErrRepoTooLarge), errors.Is(err, gitrepo.ErrFileTooLarge):
		// The admin's size bounds: retrying fetches the same bytes again.
		return stalled(v1.ReasonWriteBackFailed, err)
	case errors.Is(err, gitrepo.ErrInvalidRequest), errors.Is(err, manifest.ErrInvalidChange):
		return stalled(v1.ReasonInvalidSpec, err)
	case errors.Is(err, manifest.ErrPathNotFound), errors.Is(err, manifest.ErrParse),
		errors.Is(err, manifest.ErrNoDocument), errors.Is(err, manifest.ErrAmbiguous),
		errors.Is(err, manifest.ErrNotEditable), errors.Is(err, manifest.ErrRender),
		errors.Is(err, manifest.ErrRenderMismatch), errors.As(err, &rejected),
		errors.Is(err, github.ErrRejected):
		return stalled(v1.ReasonWriteBackFailed, err)
	}
	return &Error{reason: v1.ReasonWriteBackFailed, err: err}
}
