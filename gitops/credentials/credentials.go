// Package credentials finds the Git (and GitHub) credentials for a
// repository URL. The platform admin, never a CanaryApp's author, provides
// them: Secrets in the operator's namespace labelled
// canary.atze.io/git-credentials: "true", in the spirit of Argo CD's
// repository credential templates.
//
// Each Secret holds:
//
//	url            required; a URL prefix such as https://github.com/acme/ or
//	               a whole repository URL
//	username       with password: HTTPS basic auth (username may be empty
//	password       for token hosts; "git" is then sent)
//	sshPrivateKey  with knownHosts: SSH key auth; knownHosts is required,
//	knownHosts     host keys are never accepted blindly
//	sshPassphrase  optional, for an encrypted sshPrivateKey
//	githubToken    optional: token for the GitHub API (pull requests); for
//	               HTTPS credentials the password is used when it is absent
//	githubAPIURL   optional: GitHub Enterprise API base URL
//
// and the admin's scope, which decides which CanaryApps may use it (lists
// are separated by commas or newlines):
//
//	namespaces     globs of CanaryApp namespaces, e.g. "team-b" or "team-*".
//	               A Secret without namespaces serves only apps whose Git
//	               location was proven through Argo CD (the Application's
//	               status.resources lists the app and its destination is
//	               the app's namespace)
//	paths          repository-relative folders or globs the app may write,
//	               with {namespace} and {name} placeholders, e.g.
//	               "apps/{namespace}/"; a pattern covers a path when it
//	               matches the path or one of its parent folders. Default:
//	               every path
//	branches       globs of branches, e.g. "main" or "release/*". Default:
//	               every branch
//	writeModes     "Commit", "PullRequest", "CommitStatus" (commit
//	               statuses on the change of an Argo CD-managed app). Default: all
//
// Secrets whose scope does not permit the request are dropped before the
// longest-prefix choice; when a Secret covers the URL but none permits the
// request, Lookup returns ErrNotPermitted and names the rule, never another
// team's repository content.
//
// The Secret whose url is the longest prefix of the repository URL wins; a
// prefix matches only at a path boundary ("https://github.com/acme" covers
// ".../acme/apps.git" but not ".../acme-evil/apps.git"). Scheme and host
// compare case-insensitively; user info in either URL is ignored. Two Secrets
// with the same url: the one whose name sorts first wins, so the choice never
// depends on list order.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/internal/safetext"
	"github.com/atzedevries/canaryop/internal/scopelist"
)

// LabelKey marks a Secret as Git credentials; its value must be "true".
const LabelKey = "canary.atze.io/git-credentials"

// Keys of the Secret's data.
const (
	KeyURL           = "url"
	KeyUsername      = "username"
	KeyPassword      = "password"
	KeySSHPrivateKey = "sshPrivateKey"
	KeySSHPassphrase = "sshPassphrase"
	KeyKnownHosts    = "knownHosts"
	KeyGitHubToken   = "githubToken"
	KeyGitHubAPIURL  = "githubAPIURL"
	KeyNamespaces    = "namespaces"
	KeyPaths         = "paths"
	KeyBranches      = "branches"
	KeyWriteModes    = "writeModes"
)

var (
	// ErrNoCredentials: no Secret covers the repository URL. A person must
	// add one (or fix its url); retrying does not help until then.
	ErrNoCredentials = errors.New("no git credentials cover this repository")
	// ErrInvalidCredentials: the best-matching Secret is malformed.
	ErrInvalidCredentials = errors.New("git credentials secret is invalid")
	// ErrNotPermitted: Secrets cover the repository URL, but the admin's
	// scope of none of them permits this app's namespace, path, branch or
	// write mode.
	ErrNotPermitted = errors.New("git credentials do not permit this write")
	// ErrInvalidRepoURL: the repository URL has userinfo with a password,
	// dot-segments, empty segments, backslashes or percent-encoded bytes,
	// which prefix matching cannot judge safely.
	ErrInvalidRepoURL = errors.New("repository URL is not in canonical form")
)

// Scope is what a write-back asks a credential Secret to permit.
type Scope struct {
	// Namespace and Name are the CanaryApp's.
	Namespace, Name string
	// Path is the repository-relative path of the manifest ("." is the root).
	Path string
	// Branch is the branch written to (the base branch of a pull request).
	Branch string
	// Mode is "Commit" or "PullRequest".
	Mode string
	// Proven is true when the location was proven through Argo CD
	// provenance rather than taken from the spec.
	Proven bool
}

// Creds are the credentials for one repository. String and GoString never
// print a secret.
type Creds struct {
	// Secret is the name of the Secret they came from.
	Secret string
	// URL is the Secret's url (the matched prefix).
	URL string
	// Git authenticates fetch and push.
	Git gitrepo.Auth
	// GitHubToken authenticates GitHub API calls; empty when not set.
	GitHubToken string
	// GitHubAPIURL is the GitHub API base; empty means api.github.com.
	GitHubAPIURL string
	// NamespaceScoped is true when the Secret's namespaces key names the
	// app's namespace: the admin vouches that namespace-less documents
	// under the permitted paths belong to it.
	NamespaceScoped bool
}

// String implements fmt.Stringer without revealing any secret.
func (c Creds) String() string {
	return fmt.Sprintf("credentials from secret %q for %s (%s)", c.Secret, c.URL, c.Git)
}

// GoString implements fmt.GoStringer without revealing any secret.
func (c Creds) GoString() string { return c.String() }

// Lookup finds credentials for a repository URL that permit scope.
type Lookup interface {
	Lookup(ctx context.Context, repoURL string, scope Scope) (Creds, error)
}

// Store reads the credential Secrets of one namespace.
type Store struct {
	reader    client.Reader
	namespace string
}

var _ Lookup = (*Store)(nil)

// New returns a Store reading Secrets in namespace (the operator's own)
// through reader. The reader should be a cache restricted to that namespace
// and label, or the API reader: the operator needs no cluster-wide Secret
// access.
func New(reader client.Reader, namespace string) *Store {
	return &Store{reader: reader, namespace: namespace}
}

// Lookup returns the credentials of the Secret whose url is the longest
// prefix of repoURL among those whose scope permits scope. It returns
// ErrNoCredentials when none covers the URL, ErrNotPermitted when some do but
// none permits the scope, and ErrInvalidCredentials when the match is
// malformed; all name the Secret or the URL without user info, never a
// secret value.
func (s *Store) Lookup(ctx context.Context, repoURL string, scope Scope) (Creds, error) {
	if err := CheckRepoURL(repoURL); err != nil {
		return Creds{}, err
	}
	var list corev1.SecretList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.MatchingLabels{LabelKey: "true"}); err != nil {
		return Creds{}, fmt.Errorf("list git credential secrets in %s: %w", s.namespace, err)
	}
	repo := normalize(repoURL)
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	var best *corev1.Secret
	bestLen, covered := -1, 0
	var refusal string
	for i := range items {
		prefix := normalize(string(items[i].Data[KeyURL]))
		if prefix == "" || !covers(prefix, repo) {
			continue
		}
		covered++
		if why := refuses(&items[i], scope); why != "" {
			if refusal == "" {
				refusal = why
			}
			continue
		}
		if len(prefix) > bestLen {
			best, bestLen = &items[i], len(prefix)
		}
	}
	if best == nil && covered > 0 {
		return Creds{}, fmt.Errorf("%w: namespace %s, path %s, branch %s, mode %s: %s",
			ErrNotPermitted, scope.Namespace, scope.Path, scope.Branch, scope.Mode, refusal)
	}
	if best == nil {
		return Creds{}, fmt.Errorf("%w: %s (add a Secret labelled %s=true with a matching url in namespace %s)",
			ErrNoCredentials, safetext.RedactURL(repoURL), LabelKey, s.namespace)
	}
	c, err := parse(best)
	if err != nil {
		return Creds{}, err
	}
	c.NamespaceScoped = len(scopelist.Split(best.Data[KeyNamespaces])) > 0
	return c, nil
}

func parse(sec *corev1.Secret) (Creds, error) {
	d := sec.Data
	c := Creds{
		Secret:       sec.Name,
		URL:          safetext.RedactURL(string(d[KeyURL])),
		GitHubToken:  strings.TrimSpace(string(d[KeyGitHubToken])),
		GitHubAPIURL: strings.TrimSpace(string(d[KeyGitHubAPIURL])),
	}
	invalid := func(why string) (Creds, error) {
		return Creds{}, fmt.Errorf("%w: secret %s/%s: %s", ErrInvalidCredentials, sec.Namespace, sec.Name, why)
	}
	password := strings.TrimSpace(string(d[KeyPassword]))
	key := d[KeySSHPrivateKey]
	switch {
	case len(key) > 0 && password != "":
		return invalid("set either password or sshPrivateKey, not both")
	case len(key) > 0:
		if len(strings.TrimSpace(string(d[KeyKnownHosts]))) == 0 {
			return invalid("sshPrivateKey needs knownHosts")
		}
		c.Git = gitrepo.Auth{SSHPrivateKey: key, SSHPassphrase: string(d[KeySSHPassphrase]), KnownHosts: d[KeyKnownHosts]}
	case password != "":
		c.Git = gitrepo.Auth{Username: strings.TrimSpace(string(d[KeyUsername])), Password: password}
		if c.GitHubToken == "" {
			c.GitHubToken = password
		}
	default:
		return invalid("needs password (with optional username) or sshPrivateKey and knownHosts")
	}
	return c, nil
}

// normalize drops user info, lower-cases scheme and host, and trims a
// trailing ".git" and "/" so that equivalent spellings compare equal.
func normalize(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	raw = gitrepo.SanitizeURL(raw)
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		u.Scheme = strings.ToLower(u.Scheme)
		u.Host = strings.ToLower(u.Host)
		u.User = nil
		raw = u.String()
	} else if at := strings.Index(raw, "@"); at >= 0 && !strings.Contains(raw, "://") {
		// scp-like user@host:path: the user is part of the address.
		if colon := strings.Index(raw[at:], ":"); colon >= 0 {
			raw = raw[:at] + strings.ToLower(raw[at:at+colon]) + raw[at+colon:]
		}
	}
	raw = strings.TrimSuffix(raw, "/")
	return strings.TrimSuffix(raw, ".git")
}

// covers reports whether prefix matches repo at a path boundary.
func covers(prefix, repo string) bool {
	if !strings.HasPrefix(repo, prefix) {
		return false
	}
	if len(repo) == len(prefix) {
		return true
	}
	last := prefix[len(prefix)-1]
	if last == '/' || last == ':' {
		return true
	}
	next := repo[len(prefix)]
	return next == '/' || next == ':'
}
