package github

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// ParseRepoFor is ParseRepo for a pull request through the GitHub API at
// apiBaseURL (as New takes it, "" for api.github.com). It returns
// ErrForeignHost when repoURL's host is not that API's forge:
//
//   - api.github.com serves github.com (and ssh.github.com, GitHub's SSH
//     over port 443);
//   - an API host "api.X" serves X (GitHub Enterprise Cloud with data
//     residency: api.acme.ghe.com serves acme.ghe.com);
//   - any other API host, such as GitHub Enterprise Server's
//     https://ghe.example.com/api/v3/, serves its own host.
//
// Ports are not compared: SSH and the API listen on different ones. Call it
// before anything is pushed or requested, so that a credential for another
// forge (a Git password the credential falls back to) never goes to the API.
func ParseRepoFor(apiBaseURL, repoURL string) (Repo, error) {
	base, err := parseBase(apiBaseURL)
	if err != nil {
		return Repo{}, err
	}
	host, r, err := parseRemote(repoURL)
	if err != nil {
		return Repo{}, err
	}
	for _, h := range forgeHosts(base) {
		if host == h {
			return r, nil
		}
	}
	return Repo{}, fmt.Errorf("github: %w: repository host %q is not served by the GitHub API at %s", ErrForeignHost, host, base.Host)
}

// forgeHosts are the Git hosts whose repositories the API at base serves.
func forgeHosts(base *url.URL) []string {
	api := normHost(base.Hostname())
	forge, isAPI := strings.CutPrefix(api, "api.")
	switch {
	case api == "api.github.com":
		return []string{"github.com", "ssh.github.com"}
	case isAPI && forge != "":
		return []string{forge}
	}
	return []string{api}
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

const defaultBaseURL = "https://api.github.com/"

// parseBase checks and completes an API base URL the way go-github's
// WithEnterpriseURLs does, so that credentials written for it keep working.
func parseBase(baseURL string) (*url.URL, error) {
	if baseURL == "" {
		baseURL = defaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("github: base URL %q must be an http(s) URL with a host", safetext.RedactURL(baseURL))
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// User information would be sent as Basic credentials, next to
		// the token.
		return nil, fmt.Errorf("github: base URL %q must have no user information, query or fragment", safetext.RedactURL(baseURL))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if !strings.HasSuffix(u.Path, "/api/v3/") && !strings.HasPrefix(u.Host, "api.") && !strings.Contains(u.Host, ".api.") {
		u.Path += "api/v3/"
	}
	u.RawPath = ""
	return u, nil
}
