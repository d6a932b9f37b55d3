package credentials

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const planted = "ghp_PLANTEDcredTOKEN987654"

// proven is the scope of an app whose location Argo CD proved: every
// Secret without a scope of its own serves it, as before scopes existed.
var proven = Scope{Namespace: "team-b", Name: "payments", Path: "apps/payments", Branch: "main", Mode: "Commit", Proven: true}

func secret(ns, name string, labelled bool, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	if labelled {
		s.Labels = map[string]string{LabelKey: "true"}
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func store(t *testing.T, secrets ...*corev1.Secret) *Store {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, s := range secrets {
		b = b.WithObjects(s)
	}
	return New(b.Build(), "canaryop-system")
}

func TestLookup(t *testing.T) {
	s := store(t,
		secret("canaryop-system", "org", true, map[string]string{"url": "https://github.com/acme", "password": "org-token"}),
		secret("canaryop-system", "apps", true, map[string]string{"url": "https://GitHub.com/acme/apps.git", "username": "bot", "password": planted, "githubAPIURL": "https://ghe.example.com/api/v3/"}),
		secret("canaryop-system", "ssh", true, map[string]string{"url": "git@github.com:acme/", "sshPrivateKey": "KEY", "knownHosts": "github.com ssh-ed25519 AAAA"}),
		secret("canaryop-system", "unlabelled", false, map[string]string{"url": "https://github.com/acme/apps/sub", "password": "x-token"}),
		secret("other-ns", "elsewhere", true, map[string]string{"url": "https://github.com/acme/apps", "password": "y-token"}),
	)
	ctx := context.Background()
	cases := []struct {
		url, secret, user, githubToken string
	}{
		{"https://github.com/acme/apps.git", "apps", "bot", planted},
		{"https://github.com/acme/apps", "apps", "bot", planted},
		{"https://user@github.com/acme/apps.git", "apps", "bot", planted},
		{"https://github.com/acme/web.git", "org", "", "org-token"},
		{"git@github.com:acme/web.git", "ssh", "", ""},
	}
	for _, c := range cases {
		got, err := s.Lookup(ctx, c.url, proven)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if got.Secret != c.secret || got.Git.Username != c.user || got.GitHubToken != c.githubToken {
			t.Fatalf("%s: got %s (user %q)", c.url, got, got.Git.Username)
		}
	}
	apps, _ := s.Lookup(ctx, "https://github.com/acme/apps.git", proven)
	if apps.GitHubAPIURL != "https://ghe.example.com/api/v3/" || apps.Git.Password != planted {
		t.Fatalf("apps creds incomplete: %s", apps)
	}
	sshCreds, _ := s.Lookup(ctx, "git@github.com:acme/web.git", proven)
	if string(sshCreds.Git.SSHPrivateKey) != "KEY" || len(sshCreds.Git.KnownHosts) == 0 {
		t.Fatal("ssh creds incomplete")
	}
	for _, form := range []string{fmt.Sprint(apps), fmt.Sprintf("%+v", apps), fmt.Sprintf("%#v", apps)} {
		if strings.Contains(form, planted) {
			t.Fatalf("token printed: %s", form)
		}
	}
}

func TestLookupNoMatch(t *testing.T) {
	s := store(t,
		secret("canaryop-system", "org", true, map[string]string{"url": "https://github.com/acme", "password": planted}),
	)
	for _, u := range []string{
		"https://github.com/acme-evil/apps.git", // not at a path boundary
		"https://gitlab.com/acme/apps.git",
		"http://github.com/acme/apps.git", // another scheme is another server
		"https://" + planted + "@github.com/other/apps.git",
	} {
		_, err := s.Lookup(context.Background(), u, proven)
		if !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("%s: err = %v, want ErrNoCredentials", u, err)
		}
		if strings.Contains(err.Error(), planted) {
			t.Fatalf("token in error: %v", err)
		}
	}
}

func TestLookupInvalid(t *testing.T) {
	for name, data := range map[string]map[string]string{
		"nothing":      {"url": "https://github.com/acme"},
		"ssh no hosts": {"url": "https://github.com/acme", "sshPrivateKey": "KEY"},
		"both kinds":   {"url": "https://github.com/acme", "sshPrivateKey": "KEY", "knownHosts": "x", "password": planted},
	} {
		s := store(t, secret("canaryop-system", "bad", true, data))
		_, err := s.Lookup(context.Background(), "https://github.com/acme/apps.git", proven)
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: err = %v", name, err)
		}
		if strings.Contains(err.Error(), planted) || strings.Contains(err.Error(), "KEY") {
			t.Fatalf("%s: secret value in error: %v", name, err)
		}
	}
}

func TestTieBreakIsByName(t *testing.T) {
	s := store(t,
		secret("canaryop-system", "b", true, map[string]string{"url": "https://github.com/acme", "password": "b-token"}),
		secret("canaryop-system", "a", true, map[string]string{"url": "https://github.com/acme/", "password": "a-token"}),
	)
	got, err := s.Lookup(context.Background(), "https://github.com/acme/apps.git", proven)
	if err != nil || got.Secret != "a" {
		t.Fatalf("got %s, %v; want secret a", got, err)
	}
}
