package github

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseRepo reads owner and name from a Git remote URL in the forms people
// paste: https://github.com/o/r(.git), git@github.com:o/r.git and
// ssh://git@host(:port)/o/r(.git). The host is not checked, so GitHub
// Enterprise URLs work too. The error never repeats credentials embedded in
// the URL.
func ParseRepo(repoURL string) (Repo, error) {
	s := strings.TrimSpace(repoURL)
	var path string
	switch {
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return Repo{}, fmt.Errorf("%w: %q", ErrInvalidRepo, redactURL(s))
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return Repo{}, fmt.Errorf("%w: %q: scheme %q is not supported", ErrInvalidRepo, redactURL(s), u.Scheme)
		}
		path = u.Path
	default:
		// scp-like syntax: [user@]host:owner/name
		userHost, p, ok := strings.Cut(s, ":")
		if !ok || userHost == "" || strings.Contains(userHost, "/") {
			return Repo{}, fmt.Errorf("%w: %q", ErrInvalidRepo, redactURL(s))
		}
		path = p
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	parts := strings.Split(path, "/")
	if len(parts) != 2 || !validName(parts[0]) || !validName(parts[1]) {
		return Repo{}, fmt.Errorf("%w: %q: the path must be owner/name", ErrInvalidRepo, redactURL(s))
	}
	return Repo{Owner: parts[0], Name: parts[1]}, nil
}

// validName accepts GitHub owner and repository names: letters, digits,
// '-', '_' and '.', not "." or "..".
func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// redactURL drops the user information of a URL ("https://TOKEN@host/..."
// or "user:pass@host") so that an error message can quote the rest.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return s[:i+3] + "redacted@" + rest[at+1:]
		}
		return s
	}
	if at := strings.Index(s, "@"); at >= 0 && at < strings.IndexAny(s+":", ":") {
		return "redacted@" + s[at+1:]
	}
	return s
}
