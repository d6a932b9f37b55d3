package github

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRepoFor(t *testing.T) {
	tests := []struct {
		api, repo string
		want      error
	}{
		{"", "https://github.com/o/r", nil},
		{"", "https://GitHub.com/o/r.git", nil},
		{"", "git@github.com:o/r.git", nil},
		{"", "ssh://git@ssh.github.com:443/o/r.git", nil},
		{"https://api.github.com/", "https://x-access-token:" + token + "@github.com/o/r", nil},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com/o/r", nil},
		{"https://ghe.example.com", "ssh://git@ghe.example.com:2222/o/r.git", nil},
		{"https://ghe.example.com/api/v3/", "git@GHE.example.com.:o/r", nil},
		{"https://api.acme.ghe.com/", "https://acme.ghe.com/o/r", nil},

		{"", "https://gitea.example.com/o/r", ErrForeignHost},
		{"", "git@gitlab.com:o/r.git", ErrForeignHost},
		{"", "https://api.github.com/o/r", ErrForeignHost},
		{"", "https://github.com.evil.example/o/r", ErrForeignHost},
		{"", "https://github.com@evil.example/o/r", ErrForeignHost},
		{"", "https://evilgithub.com/o/r", ErrForeignHost},
		{"https://ghe.example.com/api/v3/", "https://github.com/o/r", ErrForeignHost},
		{"https://ghe.example.com/api/v3/", "https://git.ghe.example.com/o/r", ErrForeignHost},
		{"https://api.acme.ghe.com/", "https://other.ghe.com/o/r", ErrForeignHost},

		{"", "https://github.com/o/r/tree/main", ErrInvalidRepo},
		{"", "https://github.com/o/%72", ErrInvalidRepo},
	}
	for _, tt := range tests {
		t.Run(tt.api+" "+tt.repo, func(t *testing.T) {
			r, err := ParseRepoFor(tt.api, tt.repo)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("ParseRepoFor(%q, %q) = %+v, %v; want %v", tt.api, tt.repo, r, err, tt.want)
			}
			if tt.want == nil && r != (Repo{"o", "r"}) {
				t.Errorf("repo = %+v, want o/r", r)
			}
			assertNoToken(t, err)
		})
	}
	if _, err := ParseRepoFor("ftp://ghe.example.com/", "https://ghe.example.com/o/r"); err == nil {
		t.Errorf("an invalid API base URL was accepted")
	}
}

// TestForeignHostSendsNothing is the check a writer makes before pushing
// a branch for a pull request: a gitea-style repository with the API of
// github.com fails with ErrForeignHost and the API stand-in receives no
// request.
func TestForeignHostSendsNothing(t *testing.T) {
	f, srv := newFake(t, token)
	_, err := ParseRepoFor(srv.URL+"/api/v3/", "https://gitea.example.com/team/apps.git")
	if !errors.Is(err, ErrForeignHost) {
		t.Fatalf("err = %v, want ErrForeignHost", err)
	}
	if !strings.Contains(err.Error(), "gitea.example.com") {
		t.Errorf("err = %q, want it to name the repository host", err)
	}
	if calls := f.calls(); len(calls) != 0 {
		t.Errorf("the API received %v", calls)
	}
}

func TestClientsReuseOnePerCredential(t *testing.T) {
	var cs Clients
	a, err := cs.For(nil, "", token)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cs.For(nil, "https://api.github.com", token)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("the same API and token gave two clients")
	}
	other, err := cs.For(nil, "", "ghp_other")
	if err != nil {
		t.Fatal(err)
	}
	ghe, err := cs.For(nil, "https://ghe.example.com", token)
	if err != nil {
		t.Fatal(err)
	}
	if other == a || ghe == a || other == ghe {
		t.Errorf("another token or API shares a client")
	}
	if _, err := cs.For(nil, "ftp://x", token); err == nil {
		t.Errorf("For accepted an invalid base URL")
	}
	for i := range 2 * maxClients {
		if _, err := cs.For(nil, "", "ghp_"+strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cs.m); n > maxClients {
		t.Errorf("Clients holds %d clients, want at most %d", n, maxClients)
	}
}
