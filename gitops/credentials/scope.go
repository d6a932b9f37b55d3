package credentials

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/atzedevries/canaryop/internal/scopelist"
)

// refuses says why sec's scope does not permit scope, or "" when it does.
// The text names the rule (a key of the Secret), never a value from the
// repository, so a refusal tells the app's author nothing about another
// team's repository.
func refuses(sec *corev1.Secret, scope Scope) string {
	d := sec.Data
	namespaces := scopelist.Split(d[KeyNamespaces])
	switch {
	case len(namespaces) == 0 && !scope.Proven:
		return fmt.Sprintf("secret %s has no %s key, so it serves only apps whose location an Argo CD Application proves", sec.Name, KeyNamespaces)
	case len(namespaces) > 0 && !scopelist.AnyGlob(namespaces, scope.Namespace):
		return fmt.Sprintf("secret %s does not list this namespace in %s", sec.Name, KeyNamespaces)
	}
	if paths := scopelist.Split(d[KeyPaths]); len(paths) > 0 && !anyPath(paths, scope) {
		return fmt.Sprintf("secret %s does not list this path in %s", sec.Name, KeyPaths)
	}
	if branches := scopelist.Split(d[KeyBranches]); len(branches) > 0 && !scopelist.AnyGlob(branches, scope.Branch) {
		return fmt.Sprintf("secret %s does not list this branch in %s", sec.Name, KeyBranches)
	}
	if modes := scopelist.Split(d[KeyWriteModes]); len(modes) > 0 && !containsFold(modes, scope.Mode) {
		return fmt.Sprintf("secret %s allows only write modes %s", sec.Name, strings.Join(modes, ", "))
	}
	return ""
}

// anyPath reports whether one of the path patterns, with {namespace} and
// {name} filled in, matches scope.Path or one of its parent folders.
func anyPath(patterns []string, scope Scope) bool {
	p := cleanRel(scope.Path)
	if p == "" {
		return false
	}
	for _, pat := range patterns {
		pat = strings.NewReplacer("{namespace}", scope.Namespace, "{name}", scope.Name).Replace(pat)
		pat = cleanRel(pat)
		if pat == "" {
			continue
		}
		for q := p; ; {
			if ok, err := path.Match(pat, q); err == nil && ok {
				return true
			}
			i := strings.LastIndex(q, "/")
			if i < 0 {
				break
			}
			q = q[:i]
		}
	}
	return false
}

// cleanRel cleans a repository-relative path; "" for one that leaves the
// repository. "." (the root) stays ".".
func cleanRel(p string) string {
	p = path.Clean("/" + strings.TrimSpace(p))
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

// CheckRepoURL refuses repository URLs whose path is not canonical: dot
// segments, empty segments, backslashes or percent-encoded bytes could make
// a server resolve the path outside the prefix a Secret was matched on, and
// a password in the URL is a credential in the spec.
func CheckRepoURL(raw string) error {
	raw = strings.TrimSpace(raw)
	bad := func(why string) error {
		return fmt.Errorf("%w: %s", ErrInvalidRepoURL, why)
	}
	if raw == "" {
		return bad("empty")
	}
	var p string
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return bad("not a URL with a host")
		}
		if _, has := u.User.Password(); has {
			return bad("it holds a password")
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.Contains(raw, "#") || strings.Contains(raw, "?") {
			return bad("it has a query or fragment")
		}
		p = u.EscapedPath()
		if i := strings.Index(raw, u.Host); i >= 0 {
			// The raw path as written, before url.Parse decodes it.
			p = raw[i+len(u.Host):]
		}
	} else {
		at := strings.Index(raw, ":")
		if at < 0 {
			return bad("not a URL")
		}
		p = raw[at+1:]
	}
	if strings.ContainsAny(p, "\\%") {
		return bad("its path has a backslash or a percent-encoded byte")
	}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for _, s := range segs {
		switch s {
		case "", ".", "..":
			return bad("its path has an empty, '.' or '..' segment")
		}
	}
	return nil
}
