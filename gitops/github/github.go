// Package github opens and tracks the pull requests that propose a canary's
// outcome, on github.com or GitHub Enterprise. Pushing the branch is not done
// here: the Git writer pushes it, then asks this package for the pull request.
//
// A Client is bound to one API base URL, and its token to that URL's origin:
// a request elsewhere carries no Authorization, a redirect elsewhere is not
// followed, and ParseRepoFor refuses a repository that is not on the API's
// own forge before anything is sent. Every request has a deadline and every
// body read is bounded.
//
// Errors are typed (ErrAuth, ErrNotFound, ErrRateLimited with
// *RateLimitedError, ErrRejected, ErrForeignHost, ErrResponseTooLarge) so
// the caller can tell a credential a person must fix from a transient
// failure. They repeat of GitHub's answer only the status and its error
// messages, cleaned and cut short, and never the token, even when a server
// echoes it.
//
// The REST calls are made here rather than with go-github: each of the
// limits above would otherwise be a workaround around a library that
// follows redirects, reads bodies whole and retries on its own terms.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PullRequests is the seam the Git writer uses to propose an outcome.
type PullRequests interface {
	// Ensure opens a PR from head to base, or updates the open one for the
	// same head (title, body, labels). Idempotent.
	Ensure(ctx context.Context, r Request) (PR, error)
	// Get returns the PR's current state: open, closed or merged. It is
	// polled; *Client asks conditionally, so an unchanged PR costs no rate
	// limit.
	Get(ctx context.Context, repo Repo, number int) (PR, error)
	// Close closes pull request number with comment, only while it is open
	// and its head is branch of repo itself: a number that names another
	// pull request is left alone. It reports whether it closed it.
	Close(ctx context.Context, repo Repo, number int, branch, comment string) (bool, error)
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
	// (HTTP 401, or 403 without the signs of a rate limit). A person must
	// fix the credential.
	ErrAuth = errors.New("GitHub rejected the credentials")
	// ErrNotFound: the repository or pull request does not exist, or the
	// token cannot see it (GitHub answers 404 for private repositories the
	// token has no access to).
	ErrNotFound = errors.New("not found on GitHub, or the token cannot see it")
	// ErrRateLimited: GitHub's primary or secondary rate limit; the error
	// is a *RateLimitedError that says when to retry.
	ErrRateLimited = errors.New("GitHub rate limit exceeded")
	// ErrRejected: GitHub refused the request as invalid (HTTP 422), for
	// example because the head branch has no commits over the base.
	ErrRejected = errors.New("GitHub rejected the request")
	// ErrInvalidRepo: a repository URL or Repo that does not name owner/name.
	ErrInvalidRepo = errors.New("not a GitHub repository")
	// ErrForeignHost: the repository is not on the forge of the GitHub API
	// the credential names (ParseRepoFor), or the API redirected to another
	// host. The token is not sent there; a person must fix the
	// repository URL or the credential's GitHub API URL.
	ErrForeignHost = errors.New("not on the host of the GitHub API")
	// ErrResponseTooLarge: a response body over MaxResponseBytes.
	ErrResponseTooLarge = fmt.Errorf("GitHub's response exceeds %d bytes", MaxResponseBytes)
)

// Error is a failed GitHub API call. Its message holds the operation, the
// HTTP status and GitHub's message, with the token redacted.
type Error struct {
	// Op is what was attempted, such as "create pull request".
	Op string
	// Status is the HTTP status code, 0 when no response arrived.
	Status int
	// Message is GitHub's explanation (its documented message fields),
	// redacted, without control or invisible characters and at most 200
	// runes; or what went wrong on the way.
	Message string
	kind    error
	// details are GitHub's messages as sent, for recognising an answer;
	// never shown.
	details []string
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

// Unwrap returns the sentinel (ErrAuth, ErrNotFound, ...), a context error,
// or nil.
func (e *Error) Unwrap() error { return e.kind }

// Client implements PullRequests with the GitHub REST API. It is safe for
// concurrent use; reuse one per credential (see Clients) so that polls are
// conditional and a spent rate limit is remembered.
type Client struct {
	hc     *http.Client
	base   *url.URL
	origin string
	token  string
	now    func() time.Time

	mu   sync.Mutex
	rate Rate
	// blocked: no request is sent before this time (rate limit).
	blocked time.Time
	// pulls remembers the last answer of Get per pull request, for
	// If-None-Match.
	pulls map[string]cachedPull
}

type cachedPull struct {
	etag string
	pr   PR
}

// maxCachedPulls bounds Client.pulls. One entry per open pull request is
// needed; past the bound an arbitrary entry goes, which costs one full GET.
const maxCachedPulls = 1024

var _ PullRequests = (*Client)(nil)

// New returns a Client for the API at baseURL, sending token only there.
// httpClient may be nil (http.DefaultClient's settings); it is copied, never
// modified, and a Timeout of 0 becomes DefaultTimeout. baseURL "" means
// api.github.com; for GitHub Enterprise pass the API base such as
// "https://ghe.example.com/api/v3/" (a bare host gets "/api/v3/"
// appended). ParseRepoFor takes the same baseURL.
func New(httpClient *http.Client, baseURL, token string) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{}
	if httpClient != nil {
		copied := *httpClient
		hc = &copied
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultTimeout
	}
	c := &Client{hc: hc, base: base, origin: origin(base), token: token, now: time.Now, pulls: map[string]cachedPull{}}
	hc.CheckRedirect = checkRedirect(c.origin, hc.CheckRedirect)
	if token != "" {
		hc.Transport = &bearer{origin: c.origin, token: token, next: hc.Transport}
	}
	return c, nil
}

// Clients hands out one Client per API base URL and token, so that what a
// Client remembers (the ETags of polled pull requests, a spent rate limit)
// serves every app that shares the credential instead of being lost after
// each write-back. The zero value is ready to use; it is safe for concurrent
// use.
type Clients struct {
	mu sync.Mutex
	m  map[clientKey]*Client
}

type clientKey struct{ base, token string }

// maxClients bounds Clients at far more credentials than a cluster has; a
// rotated token leaves its old Client behind until the bound drops one.
const maxClients = 64

// For returns the Client for baseURL and token, made by New with
// httpClient the first time; later calls for the same pair reuse it and
// ignore httpClient.
func (cs *Clients) For(httpClient *http.Client, baseURL, token string) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	key := clientKey{base: base.String(), token: token}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.m[key]; ok {
		return c, nil
	}
	c, err := New(httpClient, baseURL, token)
	if err != nil {
		return nil, err
	}
	if cs.m == nil {
		cs.m = map[clientKey]*Client{}
	}
	if len(cs.m) >= maxClients {
		for k := range cs.m {
			delete(cs.m, k)
			break
		}
	}
	cs.m[key] = c
	return c, nil
}

// pullJSON is the part of GitHub's pull request object that is read.
type pullJSON struct {
	Number   int         `json:"number"`
	State    string      `json:"state"`
	Title    string      `json:"title"`
	Body     *string     `json:"body"`
	HTMLURL  string      `json:"html_url"`
	Merged   bool        `json:"merged"`
	MergedAt *string     `json:"merged_at"`
	Labels   []labelJSON `json:"labels"`
	Head     struct {
		Ref  string `json:"ref"`
		Repo *struct {
			FullName string `json:"full_name"`
		} `json:"repo"`
	} `json:"head"`
}

// from reports whether the pull request's head is branch of repo.
func (p pullJSON) from(repo Repo, branch string) bool {
	return p.Head.Ref == branch && p.Head.Repo != nil && strings.EqualFold(p.Head.Repo.FullName, repo.String())
}

type labelJSON struct {
	Name string `json:"name"`
}

func (p pullJSON) body() string {
	if p.Body == nil {
		return ""
	}
	return *p.Body
}

// toPR checks what the writer relies on: a number to label and poll, and
// one of the two states GitHub has.
func toPR(op string, p pullJSON) (PR, error) {
	if p.Number <= 0 || (p.State != StateOpen && p.State != StateClosed) {
		return PR{}, &Error{Op: op, Message: "the response is not a pull request with a number and state"}
	}
	state := p.State
	if p.Merged || (p.MergedAt != nil && *p.MergedAt != "") {
		state = StateMerged
	}
	return PR{Number: p.Number, URL: p.HTMLURL, State: state}, nil
}

func (r Repo) path(rest string) string { return "repos/" + r.Owner + "/" + r.Name + "/" + rest }

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
	const op = "create pull request"
	var p pullJSON
	_, err := c.do(ctx, call{op: op, method: http.MethodPost, path: r.Repo.path("pulls"),
		in: map[string]string{"title": r.Title, "head": r.Head, "base": r.Base, "body": r.Body}}, &p)
	switch {
	case alreadyExists(err):
		if p, err = c.updateExisting(ctx, r); err != nil {
			return PR{}, err
		}
	case err != nil:
		return PR{}, err
	}
	pr, err := toPR(op, p)
	if err != nil {
		return PR{}, err
	}
	if err := c.ensureLabels(ctx, r, pr.Number, p); err != nil {
		return PR{}, err
	}
	return pr, nil
}

// updateExisting finds the open pull request for the head and brings its
// title and body up to date.
func (c *Client) updateExisting(ctx context.Context, r Request) (pullJSON, error) {
	head := r.Head
	if !strings.Contains(head, ":") {
		head = r.Repo.Owner + ":" + head
	}
	var open []pullJSON
	_, err := c.do(ctx, call{op: "list pull requests", method: http.MethodGet, path: r.Repo.path("pulls"),
		query: url.Values{"state": {StateOpen}, "head": {head}, "base": {r.Base}}}, &open)
	if err != nil {
		return pullJSON{}, err
	}
	if len(open) == 0 {
		// The pull request GitHub saw was closed or merged in between;
		// the caller retries and then creates a new one.
		return pullJSON{}, &Error{Op: "find existing pull request", Status: http.StatusUnprocessableEntity,
			Message: fmt.Sprintf("GitHub reports a pull request for %s into %s, but none is open", c.clean(head), c.clean(r.Base)),
			kind:    ErrRejected}
	}
	p := open[0]
	if p.Title == r.Title && p.body() == r.Body {
		return p, nil
	}
	if p.Number <= 0 {
		return pullJSON{}, &Error{Op: "list pull requests", Message: "the response is not a pull request with a number and state"}
	}
	var updated pullJSON
	_, err = c.do(ctx, call{op: fmt.Sprintf("update pull request #%d", p.Number), method: http.MethodPatch,
		path: r.Repo.path("pulls/" + strconv.Itoa(p.Number)),
		in:   map[string]string{"title": r.Title, "body": r.Body}}, &updated)
	return updated, err
}

func (c *Client) ensureLabels(ctx context.Context, r Request, number int, p pullJSON) error {
	var missing []string
	for _, l := range r.Labels {
		has := slices.ContainsFunc(p.Labels, func(have labelJSON) bool { return strings.EqualFold(have.Name, l) })
		if l != "" && !has && !slices.Contains(missing, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := c.do(ctx, call{op: fmt.Sprintf("add labels to pull request #%d", number), method: http.MethodPost,
		path: r.Repo.path("issues/" + strconv.Itoa(number) + "/labels"), in: missing}, nil)
	return err
}

// Get returns the pull request's number, URL and state. It asks with the
// ETag of its last answer for the same pull request (If-None-Match), so
// that an unchanged pull request is answered 304, which GitHub does not
// count against the rate limit.
func (c *Client) Get(ctx context.Context, repo Repo, number int) (PR, error) {
	if err := repo.validate(); err != nil {
		return PR{}, err
	}
	if number <= 0 {
		return PR{}, fmt.Errorf("github: get pull request: %w: number %d", ErrInvalidRepo, number)
	}
	op := fmt.Sprintf("get pull request %s#%d", repo, number)
	key := repo.String() + "#" + strconv.Itoa(number)
	c.mu.Lock()
	cached, ok := c.pulls[key]
	c.mu.Unlock()
	header := http.Header{}
	if ok {
		header.Set("If-None-Match", cached.etag)
	}
	var p pullJSON
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, path: repo.path("pulls/" + strconv.Itoa(number)), header: header}, &p)
	if err != nil {
		return PR{}, err
	}
	if resp.status == http.StatusNotModified {
		if !ok {
			return PR{}, &Error{Op: op, Status: resp.status, Message: "not modified, but nothing was asked for"}
		}
		return cached.pr, nil
	}
	pr, err := toPR(op, p)
	if err != nil {
		return PR{}, err
	}
	c.remember(key, resp.header.Get("ETag"), pr)
	return pr, nil
}

func (c *Client) remember(key, etag string, pr PR) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if etag == "" {
		delete(c.pulls, key)
		return
	}
	if _, ok := c.pulls[key]; !ok && len(c.pulls) >= maxCachedPulls {
		for k := range c.pulls {
			delete(c.pulls, k)
			break
		}
	}
	c.pulls[key] = cachedPull{etag: etag, pr: pr}
}

// alreadyExists recognises GitHub's answer to creating a second pull request
// for the same head and base: 422 with "A pull request already exists for
// owner:branch." in one of the errors.
func alreadyExists(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity {
		return false
	}
	return slices.ContainsFunc(e.details, func(m string) bool {
		return strings.Contains(strings.ToLower(m), "a pull request already exists")
	})
}

// Close implements PullRequests: it reads the pull request (uncached),
// and only when it is open and comes from branch of repo comments and
// closes it.
func (c *Client) Close(ctx context.Context, repo Repo, number int, branch, comment string) (bool, error) {
	if err := repo.validate(); err != nil {
		return false, err
	}
	if number <= 0 || branch == "" {
		return false, fmt.Errorf("github: close pull request: %w: number %d, branch %q", ErrInvalidRepo, number, branch)
	}
	op := fmt.Sprintf("close pull request %s#%d", repo, number)
	path := repo.path("pulls/" + strconv.Itoa(number))
	var p pullJSON
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path}, &p); err != nil {
		return false, err
	}
	if p.State != StateOpen || p.Merged || !p.from(repo, branch) {
		return false, nil
	}
	if comment != "" {
		in := map[string]string{"body": comment}
		if _, err := c.do(ctx, call{op: op, method: http.MethodPost, path: repo.path("issues/" + strconv.Itoa(number) + "/comments"), in: in}, nil); err != nil {
			return false, err
		}
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodPatch, path: path, in: map[string]string{"state": StateClosed}}, nil); err != nil {
		return false, err
	}
	c.mu.Lock()
	delete(c.pulls, repo.String()+"#"+strconv.Itoa(number))
	c.mu.Unlock()
	return true, nil
}
