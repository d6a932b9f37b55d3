// Package github opens and tracks the pull requests that propose a canary's
// outcome, on github.com or GitHub Enterprise. Pushing the branch is not done
// here: the Git writer pushes it, then asks this package for the pull request.
//
// Errors are typed (ErrAuth, ErrNotFound, ErrRateLimited, ErrRejected) so
// the caller can tell a credential a person must fix from a transient
// failure, and they never contain the token, even when a server echoes it.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	gh "github.com/google/go-github/v57/github"
)

// PullRequests is the seam the Git writer uses to propose an outcome.
type PullRequests interface {
	// Ensure opens a PR from head to base, or updates the open one for the
	// same head (title, body, labels). Idempotent.
	Ensure(ctx context.Context, r Request) (PR, error)
	// Get returns the PR's current state: open, closed or merged.
	Get(ctx context.Context, repo Repo, number int) (PR, error)
}

// Repo names a GitHub repository.
type Repo struct{ Owner, Name string }

func (r Repo) validate() error {
	if !validName(r.Owner) || !validName(r.Name) {
		return fmt.Errorf("github: %w: owner %q and name %q must be non-empty GitHub names", ErrInvalidRepo, r.Owner, r.Name)
	}
	return nil
}

// String returns "owner/name".
func (r Repo) String() string { return r.Owner + "/" + r.Name }

// Request describes the pull request to open or update.
type Request struct {
	Repo Repo
	// Head is the branch with the change: "branch" for a branch of Repo, or
	// "owner:branch" for a branch of a fork.
	Head string
	// Base is the branch the change is proposed to.
	Base        string
	Title, Body string
	// Labels are added to the pull request; labels it already has are kept.
	Labels []string
}

// States of a pull request.
const (
	StateOpen   = "open"
	StateClosed = "closed"
	StateMerged = "merged"
)

// PR is a pull request as far as the writer cares.
type PR struct {
	Number int
	// URL is the pull request's page for people (html_url).
	URL string
	// State is StateOpen, StateClosed or StateMerged.
	State string
}

// Sentinel errors; match them with errors.Is.
var (
	// ErrAuth: the token is missing, invalid, expired or lacks permission
	// (HTTP 401 or 403). A person must fix the credential.
	ErrAuth = errors.New("GitHub rejected the credentials")
	// ErrNotFound: the repository or pull request does not exist, or the
	// token cannot see it (GitHub answers 404 for private repositories the
	// token has no access to).
	ErrNotFound = errors.New("not found on GitHub, or the token cannot see it")
	// ErrRateLimited: GitHub's primary or secondary rate limit; retry later.
	ErrRateLimited = errors.New("GitHub rate limit exceeded")
	// ErrRejected: GitHub refused the request as invalid (HTTP 422), for
	// example because the head branch has no commits over the base.
	ErrRejected = errors.New("GitHub rejected the request")
	// ErrInvalidRepo: a repository URL or Repo that does not name owner/name.
	ErrInvalidRepo = errors.New("not a GitHub repository")
	// ErrForeignHost: the repository is not on the forge of the GitHub API
	// the credential names (ParseRepoFor). A person must fix the
	// repository URL or the credential's GitHub API URL.
	ErrForeignHost = errors.New("not on the host of the GitHub API")
)

// Error is a failed GitHub API call. Its message holds the operation, the
// HTTP status and GitHub's message, with the token redacted.
type Error struct {
	// Op is what was attempted, such as "create pull request".
	Op string
	// Status is the HTTP status code, 0 when no response arrived.
	Status int
	// Message is GitHub's explanation, redacted.
	Message string
	kind    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("github: " + e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.kind != nil {
		b.WriteString(": " + e.kind.Error())
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel (ErrAuth, ErrNotFound, ...) or nil.
func (e *Error) Unwrap() error { return e.kind }

// Client implements PullRequests with the GitHub REST API.
type Client struct {
	gh    *gh.Client
	token string
}

var _ PullRequests = (*Client)(nil)

// New returns a Client. httpClient may be nil (http.DefaultClient's
// settings); it is copied, never modified. baseURL "" means api.github.com;
// for GitHub Enterprise pass the API base such as
// "https://ghe.example.com/api/v3/" (a bare host gets "/api/v3/" appended).
func New(httpClient *http.Client, baseURL, token string) (*Client, error) {
	hc := &http.Client{}
	if httpClient != nil {
		copied := *httpClient
		hc = &copied
	}
	if token != "" {
		hc.Transport = &bearer{token: token, next: hc.Transport}
	}
	c := gh.NewClient(hc)
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("github: base URL %q must be an http(s) URL with a host", redactURL(baseURL))
		}
		if c, err = c.WithEnterpriseURLs(baseURL, baseURL); err != nil {
			return nil, fmt.Errorf("github: base URL %q: %w", redactURL(baseURL), err)
		}
	}
	return &Client{gh: c, token: token}, nil
}

// bearer adds the token to every request. go-github's WithAuthToken would
// do the same but sets the Transport of the caller's shared http.Client.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	next := b.next
	if next == nil {
		next = http.DefaultTransport
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return next.RoundTrip(req)
}

// Ensure opens the pull request, or, when GitHub says one already exists
// for the head, updates that one's title and body. Labels are added when
// missing. Calling it again with the same Request changes nothing.
func (c *Client) Ensure(ctx context.Context, r Request) (PR, error) {
	if err := r.Repo.validate(); err != nil {
		return PR{}, err
	}
	if r.Head == "" || r.Base == "" {
		return PR{}, fmt.Errorf("github: ensure pull request: head and base branches are required")
	}
	pr, _, err := c.gh.PullRequests.Create(ctx, r.Repo.Owner, r.Repo.Name, &gh.NewPullRequest{
		Title: gh.String(r.Title),
		Head:  gh.String(r.Head),
		Base:  gh.String(r.Base),
		Body:  gh.String(r.Body),
	})
	if err != nil {
		if !alreadyExists(err) {
			return PR{}, c.wrap("create pull request", err)
		}
		if pr, err = c.updateExisting(ctx, r); err != nil {
			return PR{}, err
		}
	}
	if err := c.ensureLabels(ctx, r, pr); err != nil {
		return PR{}, err
	}
	return toPR(pr), nil
}

// updateExisting finds the open pull request for the head and brings its
// title and body up to date.
func (c *Client) updateExisting(ctx context.Context, r Request) (*gh.PullRequest, error) {
	head := r.Head
	if !strings.Contains(head, ":") {
		head = r.Repo.Owner + ":" + head
	}
	open, _, err := c.gh.PullRequests.List(ctx, r.Repo.Owner, r.Repo.Name, &gh.PullRequestListOptions{
		State: StateOpen,
		Head:  head,
		Base:  r.Base,
	})
	if err != nil {
		return nil, c.wrap("list pull requests", err)
	}
	if len(open) == 0 {
		// The pull request GitHub saw was closed or merged in between;
		// the caller retries and then creates a new one.
		return nil, &Error{Op: "find existing pull request", Status: http.StatusUnprocessableEntity,
			Message: fmt.Sprintf("GitHub reports a pull request for %s into %s, but none is open", c.redact(head), c.redact(r.Base)),
			kind:    ErrRejected}
	}
	pr := open[0]
	if pr.GetTitle() == r.Title && pr.GetBody() == r.Body {
		return pr, nil
	}
	updated, _, err := c.gh.PullRequests.Edit(ctx, r.Repo.Owner, r.Repo.Name, pr.GetNumber(), &gh.PullRequest{
		Title: gh.String(r.Title),
		Body:  gh.String(r.Body),
	})
	if err != nil {
		return nil, c.wrap(fmt.Sprintf("update pull request #%d", pr.GetNumber()), err)
	}
	return updated, nil
}

func (c *Client) ensureLabels(ctx context.Context, r Request, pr *gh.PullRequest) error {
	var missing []string
	for _, l := range r.Labels {
		has := slices.ContainsFunc(pr.Labels, func(have *gh.Label) bool { return strings.EqualFold(have.GetName(), l) })
		if l != "" && !has && !slices.Contains(missing, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, _, err := c.gh.Issues.AddLabelsToIssue(ctx, r.Repo.Owner, r.Repo.Name, pr.GetNumber(), missing); err != nil {
		return c.wrap(fmt.Sprintf("add labels to pull request #%d", pr.GetNumber()), err)
	}
	return nil
}

// Get returns the pull request's number, URL and state.
func (c *Client) Get(ctx context.Context, repo Repo, number int) (PR, error) {
	if err := repo.validate(); err != nil {
		return PR{}, err
	}
	pr, _, err := c.gh.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return PR{}, c.wrap(fmt.Sprintf("get pull request %s#%d", repo, number), err)
	}
	return toPR(pr), nil
}

func toPR(pr *gh.PullRequest) PR {
	state := pr.GetState()
	if pr.GetMerged() || pr.MergedAt != nil {
		state = StateMerged
	}
	return PR{Number: pr.GetNumber(), URL: pr.GetHTMLURL(), State: state}
}

// alreadyExists recognises GitHub's answer to creating a second pull request
// for the same head and base: 422 with "A pull request already exists for
// owner:branch." in one of the errors.
func alreadyExists(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, e := range er.Errors {
		if strings.Contains(strings.ToLower(e.Message), "a pull request already exists") {
			return true
		}
	}
	return strings.Contains(strings.ToLower(er.Message), "a pull request already exists")
}

// wrap turns a go-github error into an *Error with a sentinel and a
// message without the token.
func (c *Client) wrap(op string, err error) error {
	e := &Error{Op: op}
	var (
		rate  *gh.RateLimitError
		abuse *gh.AbuseRateLimitError
		er    *gh.ErrorResponse
		tfa   *gh.TwoFactorAuthError
	)
	switch {
	case errors.As(err, &rate):
		e.Status, e.Message, e.kind = status(rate.Response), rate.Message, ErrRateLimited
	case errors.As(err, &abuse):
		e.Status, e.Message, e.kind = status(abuse.Response), abuse.Message, ErrRateLimited
	case errors.As(err, &tfa):
		e.Status, e.Message, e.kind = http.StatusUnauthorized, tfa.Message, ErrAuth
	case errors.As(err, &er):
		e.Status, e.Message = status(er.Response), er.Message
		for _, d := range er.Errors {
			if d.Message != "" {
				e.Message += "; " + d.Message
			}
		}
		switch e.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			e.kind = ErrAuth
		case http.StatusNotFound:
			e.kind = ErrNotFound
		case http.StatusUnprocessableEntity:
			e.kind = ErrRejected
		}
	default:
		// Transport errors (connection refused, timeout, context done):
		// go-github strips query strings from their URLs; the message
		// is still redacted below in case a proxy echoes headers.
		e.Message = err.Error()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			e.kind = ctxErr(err)
		}
	}
	e.Message = c.redact(e.Message)
	return e
}

func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

func status(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

func (c *Client) redact(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[redacted]")
}
