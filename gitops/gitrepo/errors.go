package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-logr/logr"

	"github.com/atzedevries/canaryop/internal/safetext"
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
	// ErrTimeout means a fetch or push did not finish within
	// Options.Timeout (or the caller's deadline), or the server stopped
	// answering. It is transient. The error also matches
	// context.DeadlineExceeded when the deadline was the cause.
	ErrTimeout = errors.New("git operation timed out")
	// ErrRepoTooLarge means a fetch would take the clone past
	// Options.MaxRepoSize, or the repository holds an object or a number
	// of objects this process will not index. The clone is removed; only
	// a smaller repository (or a higher limit) helps.
	ErrRepoTooLarge = errors.New("repository too large")
	// ErrFileTooLarge is returned by the edit's file system for a file
	// larger than Options.MaxFileSize; the file is kept as it is in Git.
	ErrFileTooLarge = errors.New("file too large")
	// ErrPanic means the edit function or the Git code of an Update
	// panicked. The panic was recovered: the repository is usable again by
	// the next Update, and no other repository was affected.
	ErrPanic = errors.New("panic during git update")
)

// limitError is a size limit that was hit, with a message that names the
// limit; it matches its sentinel with errors.Is.
type limitError struct {
	sentinel error
	msg      string
}

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Is(target error) bool { return target == e.sentinel }

// mib formats a byte count for a message: whole MiB when it is one.
func mib(n int64) string {
	const m = 1 << 20
	if n >= m && n%m == 0 {
		return fmt.Sprintf("%d MiB", n/m)
	}
	return fmt.Sprintf("%d bytes", n)
}

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

// markTimeout makes an error that a deadline caused match ErrTimeout.
func markTimeout(err error) error {
	if err != nil && !errors.Is(err, ErrTimeout) && timedOut(err) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// panicError turns a recovered panic into an error without its stack; the
// stack goes to the log at V(1), for whoever debugs the cause.
func panicError(ctx context.Context, what string, p any, secrets []string) error {
	value := safetext.Truncate(redactString(fmt.Sprint(p), secrets...), 200)
	logr.FromContextOrDiscard(ctx).V(1).Info("Recovered from a panic", "during", what, "panic", value,
		"stack", redactString(string(debug.Stack()), secrets...))
	return fmt.Errorf("%w: %s: %s", ErrPanic, what, value)
}

// classify marks authentication failures with ErrAuth, keeping the cause.
func classify(op string, err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(err.Error(), "unable to authenticate"),
		strings.Contains(err.Error(), "knownhosts"):
		return fmt.Errorf("%s: %w: %w", op, ErrAuth, err)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("%s: %w: the repository has no branches yet", op, ErrBranchNotFound)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s: %w: %w", op, ErrRepositoryNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
