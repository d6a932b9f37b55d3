package github

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"unicode/utf8"
)

// CommitStatuses is the seam that reports a canary's verdict on the commit
// of the change that introduced its image.
type CommitStatuses interface {
	// SetStatus posts s on commit sha of repo (GitHub keeps every status;
	// the newest per context is the one shown).
	SetStatus(ctx context.Context, repo Repo, sha string, s Status) error
}

// Commit status states GitHub knows.
const (
	StatusPending = "pending"
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusError   = "error"
)

// MaxStatusDescription is GitHub's limit on a status description.
const MaxStatusDescription = 140

// Status is one commit status.
type Status struct {
	// State is StatusPending, StatusSuccess, StatusFailure or StatusError.
	State string
	// Context tells this status from other checks on the commit, such as
	// "canaryop/canary/team-a/shop".
	Context string
	// Description is one line for people; cut to MaxStatusDescription.
	Description string
}

var (
	_ CommitStatuses = (*Client)(nil)

	commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// SetStatus posts s on sha (POST /repos/{owner}/{repo}/statuses/{sha}).
// GitHub's answer is not read beyond its status code.
func (c *Client) SetStatus(ctx context.Context, repo Repo, sha string, s Status) error {
	if err := repo.validate(); err != nil {
		return err
	}
	if !commitSHA.MatchString(sha) {
		return fmt.Errorf("github: set commit status: %q is not a full commit SHA", sha)
	}
	switch s.State {
	case StatusPending, StatusSuccess, StatusFailure, StatusError:
	default:
		return fmt.Errorf("github: set commit status: unknown state %q", s.State)
	}
	if s.Context == "" {
		return fmt.Errorf("github: set commit status: a context is required")
	}
	in := map[string]string{"state": s.State, "context": s.Context, "description": cut(s.Description, MaxStatusDescription)}
	_, err := c.do(ctx, call{op: "set commit status", method: http.MethodPost, path: repo.path("statuses/" + sha), in: in}, nil)
	return err
}

// cut shortens s to at most n runes, ending in "..." when cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}
