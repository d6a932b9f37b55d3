// Package scopelist matches the admin's lists of CanaryApp namespaces (and
// other names) in Secrets of the operator's namespace: the Git credentials
// (gitops/credentials), notification providers and webhook targets
// (internal/notify) read their `namespaces` key the same way, so one rule
// decides which team may use an admin's Secret.
package scopelist

import (
	"path"
	"strings"
)

// Split reads a comma- or newline-separated list, dropping blanks.
func Split(b []byte) []string {
	var out []string
	for _, f := range strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// AnyGlob reports whether one of the globs (path.Match syntax, so "team-*"
// or "*") matches s. A malformed glob matches nothing: an admin's typo must
// not widen access.
func AnyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, s); err == nil && ok {
			return true
		}
	}
	return false
}
