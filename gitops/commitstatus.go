package gitops

import (
	"context"
	"errors"
	"fmt"
	"slices"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/github"
)

// ModeCommitStatus is the credential scope's write mode of commit
// statuses: a Secret whose writeModes key lists modes without it posts
// none.
const ModeCommitStatus v1.WriteMode = "CommitStatus"

// ErrNoCommitStatus: no commit status can be reported for the app: it is
// not managed by an Argo CD Application, Argo CD reports no commit, or the
// repository is not on the GitHub API of the admin's credential (or the
// credential has no GitHub token). Nothing is wrong; nothing is posted.
var ErrNoCommitStatus = errors.New("no commit status is reported")

// CommitStatuses reports a canary's verdict on the commit of the change
// that introduced its image. Where is never the author's word: the
// repository and the commit come from the Argo CD Application that
// provably manages the app (package argocd), the token from the admin's
// credential Secret whose scope grants ModeCommitStatus. *GitWriter
// implements it.
type CommitStatuses interface {
	// Report posts s on the commit of app's change and returns it:
	// revision, which must be a commit the app's Application synced
	// (status.sync, the running operation or its history), so that a
	// forged status.commitStatus cannot aim it at another commit; or, when
	// revision is empty, the commit the Application synced last, which is
	// the change that brought a canary image that just started. The
	// returned Change names the commit also when the post failed after it
	// was found.
	Report(ctx context.Context, app *v1.CanaryApp, revision string, s github.Status) (Change, error)
}

// Change is the commit of a change.
type Change struct {
	Revision string
	// Repository is owner/name on GitHub.
	Repository string
}

// CommitStatusesFunc returns the commit status client of a repository's
// credentials.
type CommitStatusesFunc func(creds credentials.Creds) (github.CommitStatuses, error)

var _ CommitStatuses = (*GitWriter)(nil)

func (w *GitWriter) Report(ctx context.Context, app *v1.CanaryApp, revision string, s github.Status) (Change, error) {
	t, err := w.statusTarget(ctx, app)
	if err != nil {
		return Change{}, err
	}
	switch {
	case revision == "" && t.src.Revision == "":
		return Change{}, fmt.Errorf("gitops: %w: Argo CD Application %s reports no synced commit", ErrNoCommitStatus, t.src.Application)
	case revision == "":
		revision = t.src.Revision
	case !slices.Contains(t.src.SyncedRevisions, revision):
		return Change{}, stalled(v1.ReasonCommitStatusNotPermitted, fmt.Errorf(
			"gitops: %w: commit %s is not one Argo CD Application %s synced (status.sync or its history)", ErrNotPermitted, short(revision), t.src.Application))
	}
	change := Change{Revision: revision, Repository: t.repo.String()}
	client, err := w.opts.CommitStatuses(t.creds)
	if err != nil {
		return change, classify(err)
	}
	if err := client.SetStatus(ctx, t.repo, revision, s); err != nil {
		return change, classify(err)
	}
	return change, nil
}

type statusTarget struct {
	src   argocd.Source
	repo  github.Repo
	creds credentials.Creds
}

// statusTarget proves the repository of app's change and finds the token
// that may post on it.
func (w *GitWriter) statusTarget(ctx context.Context, app *v1.CanaryApp) (statusTarget, error) {
	none := func(format string, args ...any) (statusTarget, error) {
		return statusTarget{}, fmt.Errorf("gitops: %w: "+format, append([]any{ErrNoCommitStatus}, args...)...)
	}
	if w.opts.Discoverer == nil {
		return none("Argo CD Applications are not read")
	}
	src, err := w.opts.Discoverer.Discover(ctx, app)
	switch {
	case errors.Is(err, argocd.ErrNotManaged), errors.Is(err, argocd.ErrUnresolvable):
		return none("%v", err)
	case errors.Is(err, argocd.ErrNotYetProven):
		return statusTarget{}, fmt.Errorf("gitops: %w; asking Argo CD again", err)
	case errors.Is(err, argocd.ErrNotProven):
		return statusTarget{}, stalled(v1.ReasonCommitStatusNotPermitted, fmt.Errorf("gitops: %w: %w", ErrNotPermitted, err))
	case err != nil:
		return statusTarget{}, fmt.Errorf("gitops: discover repository: %w", err)
	}
	loc := Location{RepoURL: src.RepoURL, Branch: src.Branch, Path: orRoot(src.Path), Proven: true, DefaultNamespace: src.DestinationNamespace}
	creds, err := w.lookup(ctx, app, &loc, ModeCommitStatus)
	switch {
	case errors.Is(err, credentials.ErrNoCredentials):
		return none("no credential Secret covers the repository")
	case errors.Is(err, ErrNotPermitted):
		return statusTarget{}, stalled(v1.ReasonCommitStatusNotPermitted, err)
	case err != nil:
		return statusTarget{}, err
	}
	if creds.GitHubToken == "" {
		return none("credential Secret %s has no githubToken", creds.Secret)
	}
	repo, err := github.ParseRepoFor(creds.GitHubAPIURL, src.RepoURL)
	if err != nil {
		return none("%v", err)
	}
	return statusTarget{src: src, repo: repo, creds: creds}, nil
}
