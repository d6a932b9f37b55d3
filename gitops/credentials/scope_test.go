package credentials

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The attack of review finding C1: an author in namespace evil names team
// B's repository and folder in spec.gitops. The org-wide Secret must not
// lend the admin's token to that write.
func TestLookupRefusesOtherNamespaces(t *testing.T) {
	s := store(t,
		secret("canaryop-system", "team-b", true, map[string]string{
			"url": "https://github.com/acme/", "password": planted,
			"namespaces": "team-b", "paths": "apps/{namespace}/", "branches": "main",
		}),
	)
	ctx := context.Background()
	repo := "https://github.com/acme/deploy.git"
	own := Scope{Namespace: "team-b", Name: "payments", Path: "apps/team-b/payments", Branch: "main", Mode: "Commit"}
	got, err := s.Lookup(ctx, repo, own)
	if err != nil || got.Secret != "team-b" || !got.NamespaceScoped {
		t.Fatalf("team-b's own app: %s, %v", got, err)
	}
	for name, sc := range map[string]Scope{
		"other namespace":              {Namespace: "evil", Name: "payments", Path: "apps/team-b/payments", Branch: "main", Mode: "Commit"},
		"other namespace, proven":      {Namespace: "evil", Name: "payments", Path: "apps/evil/payments", Branch: "main", Mode: "Commit", Proven: true},
		"own namespace, foreign path":  {Namespace: "team-b", Name: "payments", Path: "apps/team-c/payments", Branch: "main", Mode: "Commit"},
		"own namespace, path escaping": {Namespace: "team-b", Name: "payments", Path: "apps/team-b/../team-c", Branch: "main", Mode: "Commit"},
		"own namespace, other branch":  {Namespace: "team-b", Name: "payments", Path: "apps/team-b/payments", Branch: "production", Mode: "Commit"},
	} {
		_, err := s.Lookup(ctx, repo, sc)
		if !errors.Is(err, ErrNotPermitted) {
			t.Errorf("%s: err = %v, want ErrNotPermitted", name, err)
			continue
		}
		if strings.Contains(err.Error(), planted) {
			t.Errorf("%s: token in error", name)
		}
	}
}

func TestUnscopedSecretServesOnlyProvenLocations(t *testing.T) {
	s := store(t, secret("canaryop-system", "org", true, map[string]string{"url": "https://github.com/acme/", "password": planted}))
	sc := Scope{Namespace: "evil", Name: "payments", Path: "apps/payments", Branch: "main", Mode: "Commit"}
	if _, err := s.Lookup(context.Background(), "https://github.com/acme/deploy.git", sc); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("spec-given location: err = %v, want ErrNotPermitted", err)
	}
	sc.Proven = true
	got, err := s.Lookup(context.Background(), "https://github.com/acme/deploy.git", sc)
	if err != nil || got.NamespaceScoped {
		t.Fatalf("proven location: %s, %v", got, err)
	}
}

// Scopes are applied before the longest-prefix choice: a narrower Secret
// that does not permit the write leaves the broader one that does.
func TestScopeFiltersBeforeLongestPrefix(t *testing.T) {
	s := store(t,
		secret("canaryop-system", "narrow", true, map[string]string{"url": "https://github.com/acme/deploy.git", "password": "n", "namespaces": "team-a"}),
		secret("canaryop-system", "broad", true, map[string]string{"url": "https://github.com/acme/", "password": "b", "namespaces": "team-*", "writeModes": "PullRequest"}),
	)
	sc := Scope{Namespace: "team-b", Name: "web", Path: "apps/web", Branch: "main", Mode: "PullRequest"}
	got, err := s.Lookup(context.Background(), "https://github.com/acme/deploy.git", sc)
	if err != nil || got.Secret != "broad" {
		t.Fatalf("got %s, %v; want broad", got, err)
	}
	sc.Mode = "Commit"
	if _, err := s.Lookup(context.Background(), "https://github.com/acme/deploy.git", sc); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("Commit where the admin requires PullRequest: %v", err)
	}
}

func TestCheckRepoURL(t *testing.T) {
	for _, u := range []string{
		"https://github.com/acme/apps.git", "ssh://git@github.com:22/acme/apps.git", "git@github.com:acme/apps.git", "http://127.0.0.1:3000/team-b/deploy.git",
	} {
		if err := CheckRepoURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{
		"https://github.com/acme/team-a/../team-b/x.git", "https://github.com/acme/team-a/%2e%2e/team-b/x.git",
		"https://github.com/acme//x.git", "https://github.com/acme/./x.git", `https://github.com/acme\x.git`,
		"https://u:pw@github.com/acme/x.git", "https://github.com/acme/x.git?ref=1", "git@github.com:acme/../b.git", "",
	} {
		if err := CheckRepoURL(u); !errors.Is(err, ErrInvalidRepoURL) {
			t.Errorf("%q: err = %v, want ErrInvalidRepoURL", u, err)
		}
	}
	s := store(t, secret("canaryop-system", "a", true, map[string]string{"url": "https://github.com/acme/team-a", "password": planted, "namespaces": "*"}))
	_, err := s.Lookup(context.Background(), "https://github.com/acme/team-a/../team-b/x.git", proven)
	if !errors.Is(err, ErrInvalidRepoURL) {
		t.Fatalf("dot-segment URL: %v", err)
	}
}

func FuzzScopePaths(f *testing.F) {
	f.Add("apps/{namespace}/", "team-b", "apps/team-b/x")
	f.Add("apps/*/web", "a", "apps/a/web/file.yaml")
	f.Fuzz(func(t *testing.T, pattern, ns, p string) {
		sc := Scope{Namespace: ns, Name: "n", Path: p}
		if anyPath([]string{pattern}, sc) {
			// Whatever matched, the path never leaves the repository.
			if c := cleanRel(p); c == "" || strings.HasPrefix(c, "../") {
				t.Fatalf("pattern %q permitted %q", pattern, p)
			}
		}
	})
}
