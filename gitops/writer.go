// Package gitops writes a canary's outcome back to the Git repository Argo CD
// syncs from: the seam the controller calls once status.writeBack holds a
// decided outcome.
//
// A write-back resolves where the CanaryApp's manifest lives (spec.gitops,
// else the managing Argo CD Application), how to write it (spec.gitops
// promotion/rollback: Commit, PullRequest or None), and the credentials the
// platform admin provides for that repository. It then edits the manifest in
// the cached clone of the repository (package gitrepo) with package
// manifest, commits with a message from package report, and pushes: to the
// branch itself, or to a branch of its own with a pull request (package
// github).
//
// Re-running a write-back is safe: an outcome the manifest already holds
// yields no new commit, and in pull request mode the existing branch and pull
// request are reused.
//
// Compare-and-swap: a rollback changes the image only while the manifest
// still names the failed image; a promotion changes it only while no commit
// made after the canary started has touched the manifest's path. Otherwise a
// person committed something newer, which is kept: a rollback then only
// records the failed image, a promotion writes nothing, and the result's
// message says so.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/github"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/gitops/manifest"
	"github.com/atzedevries/canaryop/gitops/report"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// Writer writes status.writeBack of a CanaryApp to Git.
type Writer interface {
	// Write writes the outcome in app.Status.WriteBack (with the analysis
	// history in app.Status.Checks). It does not change app.
	Write(ctx context.Context, app *v1.CanaryApp) (Result, error)
	// PullRequestState returns "open", "closed" or "merged" for the pull
	// request in app.Status.WriteBack.PullRequestURL.
	PullRequestState(ctx context.Context, app *v1.CanaryApp) (string, error)
}

// Result is what a write-back produced.
type Result struct {
	// Commit is the commit that holds the outcome (new, or the one that
	// already held it); empty when nothing was written (mode None).
	Commit string
	// PullRequestURL and PullRequestState describe the pull request in
	// PullRequest mode.
	PullRequestURL   string
	PullRequestState string
	// PullRequest names the pull request (repository, head branch, number)
	// in PullRequest mode.
	PullRequest *v1.PullRequestRef
	// Message says what happened, for status.
	Message string
}

// Location is where a CanaryApp's manifest lives.
type Location struct {
	RepoURL string
	Branch  string
	// Path is the repository-relative folder or file; "." is the root.
	Path string
	// From says where the location came from: "spec.gitops" or the Argo CD
	// Application "argocd:<namespace>/<name>".
	From string
	// Proven is true when an Argo CD Application provably manages the app
	// and the location is its source.
	Proven bool
	// DefaultNamespace is the namespace a document without
	// metadata.namespace belongs to: the proven Application's destination,
	// or the app's namespace when the admin's credential scope names it.
	// Empty: such documents belong to no app.
	DefaultNamespace string
}

// Discoverer finds the Git location from the managing Argo CD Application;
// *argocd.Discoverer implements it.
type Discoverer interface {
	Discover(ctx context.Context, app *v1.CanaryApp) (argocd.Source, error)
}

// PullRequestsFunc returns the pull request client for a repository's
// credentials.
type PullRequestsFunc func(creds credentials.Creds) (github.PullRequests, error)

// DefaultAuthor is the commit author when Options.Author is empty.
var DefaultAuthor = gitrepo.Author{Name: "canaryop", Email: "canaryop@canary.atze.io"}

// DefaultLabels are put on every pull request; the outcome adds
// "canary-promoted" or "canary-rolled-back".
var DefaultLabels = []string{"canaryop"}

// Options configure a GitWriter.
type Options struct {
	// Cache holds the clones. Required.
	Cache *gitrepo.Cache
	// Credentials finds the credentials of a repository. Required.
	Credentials credentials.Lookup
	// Discoverer fills in the repository and path when spec.gitops leaves
	// them out; nil means they must be given.
	Discoverer Discoverer
	// PullRequests makes the GitHub client; nil means github.New with
	// HTTPClient and the credentials' GitHub token and API URL.
	PullRequests PullRequestsFunc
	// CommitStatuses makes the commit status client; nil means github.New
	// with HTTPClient and the credentials' GitHub token and API URL.
	CommitStatuses CommitStatusesFunc
	// HTTPClient is used by the default PullRequests and CommitStatuses; nil is
	// http.DefaultClient's settings.
	HTTPClient *http.Client
	// Author of the commits. Default DefaultAuthor.
	Author gitrepo.Author
	// Signer, when set, signs the commits.
	Signer gitrepo.Signer
	// Labels of the pull requests. Default DefaultLabels.
	Labels []string
	// MaxOutcomesPerCommit bounds how many commit-mode outcomes of one
	// branch that wait at the same time share one commit. Default
	// DefaultMaxOutcomesPerCommit; 1 writes one commit per outcome. Pull
	// request mode is always one branch and pull request per outcome.
	MaxOutcomesPerCommit int
}

// GitWriter implements Writer.
type GitWriter struct {
	opts  Options
	batch *coalescer
}

var _ Writer = (*GitWriter)(nil)

// New returns a GitWriter.
func New(opts Options) (*GitWriter, error) {
	if opts.Cache == nil || opts.Credentials == nil {
		return nil, errors.New("gitops: Cache and Credentials are required")
	}
	if opts.Author.Name == "" || opts.Author.Email == "" {
		opts.Author = DefaultAuthor
	}
	if opts.Labels == nil {
		opts.Labels = DefaultLabels
	}
	// One client per API and token keeps the ETags and the rate-limit
	// state between polls, and shares a spent rate limit between pull
	// requests and commit statuses.
	clients, hc := &github.Clients{}, opts.HTTPClient
	if opts.PullRequests == nil {
		opts.PullRequests = func(c credentials.Creds) (github.PullRequests, error) {
			if c.GitHubToken == "" {
				return nil, fmt.Errorf("%w: secret %s has no githubToken (or HTTPS password) for pull requests", credentials.ErrInvalidCredentials, c.Secret)
			}
			return clients.For(hc, c.GitHubAPIURL, c.GitHubToken)
		}
	}
	if opts.CommitStatuses == nil {
		opts.CommitStatuses = func(c credentials.Creds) (github.CommitStatuses, error) {
			return clients.For(hc, c.GitHubAPIURL, c.GitHubToken)
		}
	}
	if opts.MaxOutcomesPerCommit <= 0 {
		opts.MaxOutcomesPerCommit = DefaultMaxOutcomesPerCommit
	}
	w := &GitWriter{opts: opts}
	if opts.MaxOutcomesPerCommit > 1 {
		w.batch = newCoalescer(opts.Cache, opts.MaxOutcomesPerCommit)
	}
	return w, nil
}

// Mode returns how an outcome is written for a spec: Commit unless the spec
// says otherwise; None without spec.gitops.
func Mode(g *v1.GitOpsSpec, outcome v1.Outcome) v1.WriteMode {
	if g == nil {
		return v1.WriteNone
	}
	if outcome == v1.OutcomeApprovalRequested {
		// An approval is a review: always a pull request.
		return v1.WritePullRequest
	}
	m := g.Promotion
	if outcome == v1.OutcomeRolledBack || outcome == v1.OutcomeRetryAllowed {
		// A retry undoes a rollback's record: it is written the way
		// rollbacks are.
		m = g.Rollback
	}
	if m == "" {
		return v1.WriteCommit
	}
	return m
}

// Write implements Writer in two phases: the commit phase edits the manifest
// and pushes the commit, to the branch itself or, in PullRequest mode, to a
// branch of the app's own; the pull-request phase then opens (or updates) the
// pull request of that branch. Both run only once the write is permitted.
func (w *GitWriter) Write(ctx context.Context, app *v1.CanaryApp) (Result, error) {
	wb := app.Status.WriteBack
	if wb == nil {
		return Result{}, fmt.Errorf("gitops: %w", ErrNoOutcome)
	}
	mode := Mode(app.Spec.GitOps, wb.Outcome)
	switch mode {
	case v1.WriteNone:
		return Result{Message: fmt.Sprintf("write-back of %s is disabled (mode None)", wb.Outcome)}, nil
	case v1.WriteCommit, v1.WritePullRequest:
	default:
		return Result{}, stalled(v1.ReasonInvalidSpec, fmt.Errorf("gitops: unknown write mode %q", mode))
	}
	// Permission before contact: the location and the admin's scope are
	// settled from cluster data alone, before anything is fetched, so a
	// refusal reveals nothing of a repository the app may not write.
	loc, err := w.Locate(ctx, app)
	if err != nil {
		return Result{}, err
	}
	creds, err := w.lookup(ctx, app, &loc, mode)
	if err != nil {
		return Result{}, err
	}
	var repo github.Repo
	if mode == v1.WritePullRequest {
		// The token goes only to the API of the repository's own forge:
		// a repository on another host gets no pull request (and no push
		// of its branch) rather than the admin's GitHub token.
		if repo, err = github.ParseRepoFor(creds.GitHubAPIURL, loc.RepoURL); err != nil {
			return Result{}, stalled(v1.ReasonRepositoryUnknown, fmt.Errorf("gitops: pull requests need a repository on the GitHub host of the credentials: %w", err))
		}
	}
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("repo", safetext.RedactURL(loc.RepoURL), "branch", loc.Branch, "path", loc.Path, "mode", mode, "credentials", creds.Secret))

	out, err := w.commitOutcome(ctx, app, loc, creds, mode)
	if err != nil {
		return Result{}, err
	}
	res := Result{Commit: out.SHA, Message: describe(out.applied, out.Commit, wb.Image)}
	if wb.Supersedes != nil {
		res.Message = strings.TrimSuffix(res.Message+"; "+w.closeSuperseded(ctx, app, loc, creds), "; ")
	}
	if mode == v1.WriteCommit || out.Branch == loc.Branch {
		// In pull request mode, a base branch that already holds the
		// outcome needs no pull request.
		return res, nil
	}
	pr, err := w.ensurePullRequest(ctx, app, creds, github.Request{Repo: repo, Head: out.pushBranch, Base: loc.Branch}, out.applied)
	if err != nil {
		return Result{}, err
	}
	res.PullRequestURL, res.PullRequestState = pr.URL, pr.State
	res.PullRequest = &v1.PullRequestRef{Repository: repo.String(), Branch: out.pushBranch, Base: loc.Branch, Number: int32(pr.Number)}
	return res, nil
}

// written is what the commit phase wrote.
type written struct {
	gitrepo.Commit
	// applied is what the edit the commit holds did to the manifest.
	applied manifest.Result
	// pushBranch is the app's own branch in PullRequest mode, else empty.
	pushBranch string
}

// commitOutcome is the commit phase: it writes the outcome into the manifest
// at loc and pushes the commit, to loc.Branch in Commit mode and to the
// app's own branch (BranchName) in PullRequest mode.
func (w *GitWriter) commitOutcome(ctx context.Context, app *v1.CanaryApp, loc Location, creds credentials.Creds, mode v1.WriteMode) (written, error) {
	wb := app.Status.WriteBack
	req := gitrepo.UpdateRequest{URL: loc.RepoURL, Branch: loc.Branch, Auth: creds.Git, Author: w.opts.Author, Edit: outcomeEdit(app, wb, loc), Signer: w.opts.Signer}
	if mode == v1.WritePullRequest {
		req.PushBranch = BranchName(app.Namespace, app.Name, wb)
	}
	commit, err := w.update(ctx, req, creds)
	if err != nil {
		return written{}, classify(err)
	}
	// outcomeEdit's result; a successful Update ran it at least once.
	applied, _ := commit.Edit.Value.(manifest.Result)
	ctrl.LoggerFrom(ctx).V(1).Info("Wrote outcome to Git", "outcome", wb.Outcome, "commit", commit.SHA, "created", commit.Created, "attempts", commit.Attempts)
	return written{Commit: commit, applied: applied, pushBranch: req.PushBranch}, nil
}

// update pushes a commit-mode outcome together with the others waiting for
// the same branch (coalesce.go), and a pull request's branch on its own.
func (w *GitWriter) update(ctx context.Context, req gitrepo.UpdateRequest, creds credentials.Creds) (gitrepo.Commit, error) {
	if w.batch == nil || req.PushBranch != "" {
		return w.opts.Cache.Update(ctx, req)
	}
	return w.batch.update(ctx, batchKey{url: gitrepo.SanitizeURL(req.URL), branch: req.Branch, secret: creds.Secret}, req)
}

// outcomeEdit is the Edit of the commit phase: the outcome's manifest change
// (with its compare-and-swap), applied at loc.Path. Its result carries the
// commit message and, as Value, the manifest.Result.
func outcomeEdit(app *v1.CanaryApp, wb *v1.WriteBackStatus, loc Location) gitrepo.Edit {
	// Documents without metadata.namespace are this app's only where
	// provenance or the admin's scope put them in its namespace.
	target := manifest.ForApp(app.Namespace, app.Name).WithDefaultNamespace(loc.DefaultNamespace)
	return func(fsys filesys.FileSystem, hist gitrepo.History) (gitrepo.EditResult, error) {
		change, err := changeFor(app, wb, loc.Path, target, fsys, hist)
		if err != nil {
			return gitrepo.EditResult{}, err
		}
		applied, err := manifest.Apply(fsys, loc.Path, target, change)
		if err != nil {
			return gitrepo.EditResult{}, err
		}
		return gitrepo.EditResult{Message: report.CommitMessage(reportInput(app, wb, applied)), Value: applied}, nil
	}
}

// ensurePullRequest is the pull-request phase: it opens the pull request of
// pr.Head into pr.Base, or updates the open one, with the title, body and
// labels of the outcome that applied describes.
func (w *GitWriter) ensurePullRequest(ctx context.Context, app *v1.CanaryApp, creds credentials.Creds, pr github.Request, applied manifest.Result) (github.PR, error) {
	prs, err := w.opts.PullRequests(creds)
	if err != nil {
		return github.PR{}, classify(err)
	}
	wb := app.Status.WriteBack
	pr.Title, pr.Body = report.PullRequest(reportInput(app, wb, applied))
	pr.Labels = append(append([]string(nil), w.opts.Labels...), outcomeLabel(wb.Outcome))
	got, err := prs.Ensure(ctx, pr)
	if err != nil {
		return github.PR{}, classify(err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Pull request ensured", "url", got.URL, "state", got.State)
	return got, nil
}

// closeSuperseded closes the approval pull request the outcome replaced,
// with a comment saying why, when it is this app's own: its repository,
// the synced branch as base, the app's approval branch as head (checked
// again against GitHub's answer by Close). A failure leaves it open and
// says so; the outcome is written either way.
func (w *GitWriter) closeSuperseded(ctx context.Context, app *v1.CanaryApp, loc Location, creds credentials.Creds) string {
	wb := app.Status.WriteBack
	ref := wb.Supersedes
	own := fmt.Sprintf("canaryop/%s/%s/%s-", app.Namespace, app.Name, strings.ToLower(string(v1.OutcomeApprovalRequested)))
	repo, err := github.ParseRepoFor(creds.GitHubAPIURL, loc.RepoURL)
	if err != nil || creds.GitHubToken == "" || !strings.EqualFold(ref.Repository, repo.String()) || ref.Base != loc.Branch ||
		!strings.HasPrefix(ref.Branch, own) || ref.Number <= 0 {
		return fmt.Sprintf("approval pull request #%d left alone: it is not this app's", ref.Number)
	}
	prs, err := w.opts.PullRequests(creds)
	if err == nil {
		comment := fmt.Sprintf("canaryop closes this approval request without merging it: the canary ended first (%s: %s).",
			outcomeLabel(wb.Outcome), safetext.Line(wb.Reason, 300))
		var closed bool
		if closed, err = prs.Close(ctx, repo, int(ref.Number), ref.Branch, comment); err == nil {
			if !closed {
				return ""
			}
			return fmt.Sprintf("approval pull request #%d closed", ref.Number)
		}
	}
	ctrl.LoggerFrom(ctx).Info("Could not close the superseded approval pull request", "number", ref.Number, "error", err.Error())
	return fmt.Sprintf("approval pull request #%d could not be closed: close it by hand", ref.Number)
}

// PullRequestState implements Writer.
func (w *GitWriter) PullRequestState(ctx context.Context, app *v1.CanaryApp) (string, error) {
	wb := app.Status.WriteBack
	if wb == nil || wb.PullRequestURL == "" {
		return "", fmt.Errorf("gitops: %w", ErrNoOutcome)
	}
	number, err := pullNumber(wb.PullRequestURL)
	if err != nil {
		return "", err
	}
	loc, err := w.Locate(ctx, app)
	if err != nil {
		return "", err
	}
	creds, err := w.lookup(ctx, app, &loc, v1.WritePullRequest)
	if err != nil {
		return "", err
	}
	repo, err := github.ParseRepoFor(creds.GitHubAPIURL, loc.RepoURL)
	if err != nil {
		return "", stalled(v1.ReasonRepositoryUnknown, fmt.Errorf("gitops: %w", err))
	}
	prs, err := w.opts.PullRequests(creds)
	if err != nil {
		return "", classify(err)
	}
	pr, err := prs.Get(ctx, repo, number)
	if err != nil {
		return "", classify(err)
	}
	return pr.State, nil
}

// Locate resolves where app's manifest lives, before anything is fetched.
//
// When the Argo CD Application that app's tracking metadata names provably
// manages app (package argocd), the location is that Application's source:
// spec.gitops may repeat it, and a repoURL, path or branch that differs is
// refused (ErrNotPermitted), since the author would otherwise choose another
// team's repository. Otherwise the location is spec.gitops as given, not
// proven: only a credential Secret whose namespaces key names app's
// namespace may then write it (see Write).
func (w *GitWriter) Locate(ctx context.Context, app *v1.CanaryApp) (Location, error) {
	g := app.Spec.GitOps
	if g == nil {
		return Location{}, stalled(v1.ReasonRepositoryUnknown, errors.New("gitops: spec.gitops is not set"))
	}
	spec := Location{RepoURL: g.RepoURL, Branch: g.Branch, Path: g.Path, From: "spec.gitops"}
	if spec.RepoURL != "" {
		if err := credentials.CheckRepoURL(spec.RepoURL); err != nil {
			return Location{}, stalled(v1.ReasonInvalidSpec, fmt.Errorf("gitops: spec.gitops.repoURL: %w", err))
		}
	}
	src, proven, err := w.discover(ctx, app)
	if err != nil {
		return Location{}, err
	}
	loc := spec
	if proven {
		if loc, err = provenLocation(spec, src); err != nil {
			return Location{}, err
		}
	} else if spec.RepoURL == "" || spec.Path == "" {
		return Location{}, stalled(v1.ReasonRepositoryUnknown, fmt.Errorf(
			"gitops: %w: spec.gitops needs repoURL and path unless an Argo CD Application provably manages this object", ErrRepositoryUnknown))
	}
	if loc.Branch == "" {
		loc.Branch = argocd.DefaultBranch
	}
	loc.Path = orRoot(strings.Trim(loc.Path, "/"))
	return loc, nil
}

// discover asks Argo CD for the proven location. Not being managed is not an
// error (the spec then says where); a hint that proves nothing is refused
// only when the spec leaves the location to Argo CD.
func (w *GitWriter) discover(ctx context.Context, app *v1.CanaryApp) (argocd.Source, bool, error) {
	if w.opts.Discoverer == nil {
		return argocd.Source{}, false, nil
	}
	src, err := w.opts.Discoverer.Discover(ctx, app)
	g := app.Spec.GitOps
	switch {
	case err == nil:
		return src, true, nil
	case errors.Is(err, argocd.ErrNotManaged):
		return argocd.Source{}, false, nil
	case errors.Is(err, argocd.ErrNotProven):
		if g.RepoURL != "" && g.Path != "" {
			return argocd.Source{}, false, nil
		}
		if errors.Is(err, argocd.ErrNotYetProven) {
			// Retried like any failed attempt: Argo CD changes its status
			// on its own (a first sync, a Git server back up).
			return argocd.Source{}, false, &Error{reason: v1.ReasonWriteBackFailed,
				err: fmt.Errorf("gitops: %w: %w; asking Argo CD again", ErrNotPermitted, err)}
		}
		return argocd.Source{}, false, stalled(v1.ReasonWriteBackNotPermitted, fmt.Errorf("gitops: %w: %w", ErrNotPermitted, err))
	case errors.Is(err, argocd.ErrUnresolvable):
		return argocd.Source{}, false, stalled(v1.ReasonRepositoryUnknown, fmt.Errorf("gitops: %w: %w", ErrRepositoryUnknown, err))
	}
	return argocd.Source{}, false, fmt.Errorf("gitops: discover repository: %w", err)
}

// provenLocation is the Application's source; spec may only repeat it (its
// path may name a file or folder inside the Application's path).
func provenLocation(spec Location, src argocd.Source) (Location, error) {
	loc := Location{RepoURL: src.RepoURL, Branch: src.Branch, Path: orRoot(src.Path), From: "argocd:" + src.Application,
		Proven: true, DefaultNamespace: src.DestinationNamespace}
	refuse := func(field string) (Location, error) {
		return Location{}, stalled(v1.ReasonWriteBackNotPermitted, fmt.Errorf(
			"gitops: %w: spec.gitops.%s differs from the source of Argo CD Application %s, which manages this object", ErrNotPermitted, field, src.Application))
	}
	if spec.RepoURL != "" && !sameRepo(spec.RepoURL, src.RepoURL) {
		return refuse("repoURL")
	}
	if spec.Branch != "" && spec.Branch != src.Branch {
		return refuse("branch")
	}
	if spec.Path != "" {
		p, root := strings.Trim(path.Clean("/"+spec.Path), "/"), strings.Trim(src.Path, "/")
		if root != "" && p != root && !strings.HasPrefix(p, root+"/") {
			return refuse("path")
		}
		loc.Path = orRoot(p)
	}
	return loc, nil
}

func orRoot(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func sameRepo(a, b string) bool {
	norm := func(s string) string {
		return strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(gitrepo.SanitizeURL(s), "/"), ".git"))
	}
	return norm(a) == norm(b)
}

// lookup finds the credentials the admin's scope grants for writing loc in
// mode on app's behalf, and completes loc.DefaultNamespace from the scope.
func (w *GitWriter) lookup(ctx context.Context, app *v1.CanaryApp, loc *Location, mode v1.WriteMode) (credentials.Creds, error) {
	scope := credentials.Scope{Namespace: app.Namespace, Name: app.Name, Path: loc.Path, Branch: loc.Branch, Mode: string(mode), Proven: loc.Proven}
	c, err := w.opts.Credentials.Lookup(ctx, loc.RepoURL, scope)
	if err != nil {
		switch {
		case errors.Is(err, credentials.ErrNotPermitted):
			return credentials.Creds{}, stalled(v1.ReasonWriteBackNotPermitted, fmt.Errorf("gitops: %w: %w", ErrNotPermitted, err))
		case errors.Is(err, credentials.ErrInvalidRepoURL):
			return credentials.Creds{}, stalled(v1.ReasonInvalidSpec, fmt.Errorf("gitops: %w", err))
		case errors.Is(err, credentials.ErrNoCredentials) || errors.Is(err, credentials.ErrInvalidCredentials):
			return credentials.Creds{}, stalled(v1.ReasonNoCredentials, fmt.Errorf("gitops: %w", err))
		}
		return credentials.Creds{}, fmt.Errorf("gitops: %w", err)
	}
	if loc.DefaultNamespace == "" && c.NamespaceScoped {
		loc.DefaultNamespace = app.Namespace
	}
	return c, nil
}

// changeFor is the manifest change of an outcome, with its compare-and-swap.
func changeFor(app *v1.CanaryApp, wb *v1.WriteBackStatus, path string, target manifest.Target, fsys filesys.FileSystem, hist gitrepo.History) (manifest.Change, error) {
	switch wb.Outcome {
	case v1.OutcomeRolledBack:
		if wb.FailedImage == "" {
			return manifest.Change{}, stalled(v1.ReasonInvalidSpec, errors.New("gitops: a rollback without a failed image"))
		}
		decided := wb.DecidedAt
		return manifest.Change{
			Image: wb.Image,
			// Revert only what failed; a newer image a person committed
			// stays, and only the failure is recorded.
			ExpectImages: []string{wb.FailedImage},
			FailedImage:  &v1.FailedImage{Image: wb.FailedImage, Reason: safetext.Truncate(wb.Reason, 1024), Time: &decided},
		}, nil
	case v1.OutcomeApprovalRequested:
		return manifest.Change{ApprovedImage: wb.Image}, nil
	case v1.OutcomeRetryAllowed:
		if wb.FailedImage == "" {
			return manifest.Change{}, stalled(v1.ReasonInvalidSpec, errors.New("gitops: a retry without an image"))
		}
		return manifest.Change{AllowImage: wb.FailedImage}, nil
	case v1.OutcomePromoted:
		c := manifest.Change{Image: wb.Image}
		rendered, err := manifest.Render(fsys, path, target)
		if err != nil || rendered.Image == wb.Image {
			// Apply reports the error, or finds nothing to change.
			return c, nil
		}
		// Git names another image. The planner records the stable image
		// before the promotion: only that one is replaced (the new image
		// came with kubectl, not Git); anything else is newer and kept.
		if wb.PreviousImage != "" {
			c.ExpectImages = []string{wb.PreviousImage}
			return c, nil
		}
		// Without that record (a status written by an older operator): if
		// nobody touched the manifest since
		// the canary started, that image is the old stable one (the new
		// one came with kubectl, not Git) and is replaced; otherwise a
		// person committed something newer, which is kept.
		touched, err := hist.ChangedSince(path, canaryStart(app, wb))
		if err != nil {
			return manifest.Change{}, err
		}
		if touched {
			c.ExpectImages = []string{wb.Image} // never matches: keep
		}
		return c, nil
	}
	return manifest.Change{}, stalled(v1.ReasonInvalidSpec, fmt.Errorf("gitops: unknown outcome %q", wb.Outcome))
}

// canaryStart is when the promoted canary started: its first check, else
// the decision.
func canaryStart(app *v1.CanaryApp, wb *v1.WriteBackStatus) time.Time {
	start := wb.DecidedAt.Time
	for _, c := range app.Status.Checks {
		if (c.Image == "" || c.Image == wb.Image) && c.Time.Time.Before(start) {
			start = c.Time.Time
		}
	}
	return start
}

// reportInput is what the commit message and the pull request say about an
// outcome, with the newer image Git kept when applied skipped the image.
func reportInput(app *v1.CanaryApp, wb *v1.WriteBackStatus, applied manifest.Result) report.Input {
	in := report.Input{
		Namespace:   app.Namespace,
		Name:        app.Name,
		Outcome:     wb.Outcome,
		Image:       wb.Image,
		FailedImage: wb.FailedImage,
		Reason:      wb.Reason,
		DecidedAt:   wb.DecidedAt.Time,
		Query:       app.Spec.PrometheusQuery,
		Checks:      app.Status.Checks,
	}
	if a := app.Spec.Analysis; a != nil {
		for _, m := range a.Metrics {
			in.Metrics = append(in.Metrics, report.MetricRule(m))
		}
	}
	if applied.ImageSkipped {
		in.KeptImage = applied.PreviousImage
	}
	if wb.Outcome == v1.OutcomeRetryAllowed {
		// The history is the failed canary's, not evidence for a retry.
		in.Query, in.Checks = "", nil
	}
	return in
}

// describe says what the write-back did, for status.
func describe(r manifest.Result, c gitrepo.Commit, image string) string {
	var parts []string
	if r.ImageChanged {
		parts = append(parts, fmt.Sprintf("image %s -> %s", r.PreviousImage, image))
	}
	if r.ImageSkipped {
		parts = append(parts, fmt.Sprintf("Git names the newer image %s, which was kept", r.PreviousImage))
	}
	if r.RecordAdded {
		parts = append(parts, "failed image recorded")
	}
	if r.RecordRemoved {
		parts = append(parts, "failure record removed")
	}
	if r.ApprovalSet {
		parts = append(parts, "approval proposed")
	}
	switch {
	case c.Created:
		parts = append(parts, fmt.Sprintf("commit %s on %s", short(c.SHA), c.Branch))
	default:
		parts = append(parts, fmt.Sprintf("Git already holds the outcome at %s on %s", short(c.SHA), c.Branch))
	}
	return strings.Join(parts, "; ")
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func outcomeLabel(o v1.Outcome) string {
	switch o {
	case v1.OutcomeRolledBack:
		return "canary-rolled-back"
	case v1.OutcomeRetryAllowed:
		return "canary-retry"
	case v1.OutcomeApprovalRequested:
		return "canary-approval"
	}
	return "canary-promoted"
}

var unsafeRef = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// BranchName is the branch a pull request for an outcome is pushed to:
// canaryop/<namespace>/<name>/<outcome>-<image>, where image is the failed
// image of a rollback or the promoted image, made safe for a ref name.
// Namespaces and names never hold "/", so two apps never share a branch
// (with "-" between them, team/b-x and team-b/x did).
func BranchName(namespace, name string, wb *v1.WriteBackStatus) string {
	image := wb.Image
	if (wb.Outcome == v1.OutcomeRolledBack || wb.Outcome == v1.OutcomeRetryAllowed) && wb.FailedImage != "" {
		image = wb.FailedImage
	}
	image = unsafeRef.ReplaceAllString(strings.ReplaceAll(image, "sha256:", ""), "-")
	for strings.Contains(image, "..") {
		image = strings.ReplaceAll(image, "..", ".")
	}
	if len(image) > 80 {
		image = image[:80]
	}
	image = strings.Trim(image, ".-")
	image = strings.TrimSuffix(image, ".lock")
	return fmt.Sprintf("canaryop/%s/%s/%s-%s", namespace, name, strings.ToLower(string(wb.Outcome)), image)
}

var pullPath = regexp.MustCompile(`/pull/([0-9]+)/?$`)

func pullNumber(url string) (int, error) {
	m := pullPath.FindStringSubmatch(url)
	if m == nil {
		return 0, fmt.Errorf("gitops: %q is not a pull request URL", url)
	}
	return strconv.Atoi(m[1])
}
