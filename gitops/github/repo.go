package github

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// ParseRepo reads owner and name from a Git remote URL in the forms people
// paste: https://github.com/o/r(.git)(/), git@github.com:o/r.git and
// ssh://git@host(:port)/o/r(.git). The host is not checked, so GitHub
// Enterprise URLs work too; ParseRepoFor checks it. The path must be exactly
// owner/name: dot-segments, percent-encoding, backslashes, empty segments,
// a query or a fragment are refused rather than normalised, because the Git
// client, the credential lookup and GitHub could each normalise them
// differently. The error never repeats credentials embedded in the URL.
func ParseRepo(repoURL string) (Repo, error) {
	_, r, err := parseRemote(repoURL)
	return r, err
}

// parseRemote returns the host and the owner/name of a Git remote URL.
func parseRemote(repoURL string) (host string, r Repo, err error) {
	s := strings.TrimSpace(repoURL)
	invalid := func(why string) (string, Repo, error) {
		if why != "" {
			why = ": " + why
		}
		return "", Repo{}, fmt.Errorf("%w: %q%s", ErrInvalidRepo, safetext.RedactURL(s), why)
	}
	var path string
	switch {
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return invalid("")
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return invalid(fmt.Sprintf("scheme %q is not supported", u.Scheme))
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
			return invalid("a query or fragment is not part of a repository")
		}
		// EscapedPath keeps the encoding url.Parse decoded: "%2e%2e"
		// must be refused, not read as "..".
		host, path = u.Hostname(), u.EscapedPath()
	default:
		// scp-like syntax: [user@]host:owner/name
		userHost, p, ok := strings.Cut(s, ":")
		if !ok || userHost == "" || strings.Contains(userHost, "/") {
			return invalid("")
		}
		host = userHost[strings.LastIndex(userHost, "@")+1:]
		if !validHost(host) {
			return invalid("")
		}
		path = p
	}
	if strings.ContainsAny(path, "%\\") {
		return invalid("the path must be owner/name, without percent-encoding or backslashes")
	}
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	path = strings.TrimSuffix(path, ".git")
	owner, name, ok := strings.Cut(path, "/")
	if !ok || !validName(owner) || !validName(name) {
		return invalid("the path must be owner/name")
	}
	return normHost(host), Repo{Owner: owner, Name: name}, nil
}

// validHost accepts the host of an scp-like remote: a DNS name or IPv4
// address. url.Parse checks the host of the other forms.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if r != '-' && r != '.' && !isAlnum(r) {
			return false
		}
	}
	return true
}

// maxNameLen is GitHub's limit for repository names (owners have 39).
const maxNameLen = 100

// validName accepts GitHub owner and repository names: letters, digits,
// '-', '_' and '.', not "." or "..", at most 100 characters. Anything else
// in a path segment, such as '/', '%', '\' or a space, is refused.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > maxNameLen {
		return false
	}
	for _, r := range s {
		if r != '-' && r != '_' && r != '.' && !isAlnum(r) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}
