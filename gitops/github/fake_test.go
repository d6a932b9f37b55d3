package github

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHub implements the part of the GitHub REST API this package uses,
// for one repository o/r under the Enterprise prefix /api/v3/, and records
// every request so that tests can assert what was sent.
type fakeGitHub struct {
	t     *testing.T
	token string

	mu       sync.Mutex
	prs      []*fakePR
	requests []request
	// fail makes the next request matching "METHOD /path" answer with
	// this status and body instead of being served.
	fail map[string]failure
	// used counts the requests GitHub would count against the rate limit:
	// all but those answered 304.
	used int
	// statuses are the commit statuses set: "sha state context description".
	statuses []string
}

// Rate-limit headers of the fake: a limit of fakeLimit per hour, resetting
// at fakeReset.
const (
	fakeLimit = 5000
	fakeReset = 1772366400 // 2026-03-01T12:00:00Z
)

type failure struct {
	status  int
	header  map[string]string
	message string
	errors  []map[string]string
}

type fakePR struct {
	Number int
	Head   string // owner:branch
	Base   string
	Title  string
	Body   string
	State  string
	Merged bool
	Labels []string
	// Comments are the bodies of the comments added.
	Comments []string
}

type request struct {
	Method, Path string
	Query        map[string]string
	Auth         string
	IfNoneMatch  string
	Body         json.RawMessage
}

func (r request) String() string {
	s := r.Method + " " + r.Path
	if len(r.Query) > 0 {
		keys := make([]string, 0, len(r.Query))
		for k := range r.Query {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var q []string
		for _, k := range keys {
			q = append(q, k+"="+r.Query[k])
		}
		s += "?" + strings.Join(q, "&")
	}
	return s
}

func newFake(t *testing.T, token string) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, token: token, fail: map[string]failure{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

var (
	pullsRe    = regexp.MustCompile(`^/api/v3/repos/([^/]+)/([^/]+)/pulls$`)
	pullRe     = regexp.MustCompile(`^/api/v3/repos/([^/]+)/([^/]+)/pulls/([0-9]+)$`)
	labelsRe   = regexp.MustCompile(`^/api/v3/repos/([^/]+)/([^/]+)/issues/([0-9]+)/labels$`)
	commentsRe = regexp.MustCompile(`^/api/v3/repos/([^/]+)/([^/]+)/issues/([0-9]+)/comments$`)
)

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	f.requests = append(f.requests, request{Method: r.Method, Path: r.URL.Path, Query: q, Auth: r.Header.Get("Authorization"),
		IfNoneMatch: r.Header.Get("If-None-Match"), Body: body})
	f.used++
	f.rateHeaders(w)

	if r.Header.Get("Authorization") != "Bearer "+f.token {
		// Some proxies and servers echo what they got; the client must
		// redact it.
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"message": "Bad credentials (got " + r.Header.Get("Authorization") + ")",
		})
		return
	}
	if fl, ok := f.fail[r.Method+" "+r.URL.Path]; ok {
		delete(f.fail, r.Method+" "+r.URL.Path)
		for k, v := range fl.header {
			w.Header().Set(k, v)
		}
		writeJSON(w, fl.status, map[string]any{"message": fl.message, "errors": fl.errors})
		return
	}

	if m := statusesRe.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		f.setStatus(w, m, body)
		return
	}
	var m []string
	var route string
	for _, c := range []struct {
		name string
		re   *regexp.Regexp
	}{{"pulls", pullsRe}, {"pull", pullRe}, {"labels", labelsRe}, {"comments", commentsRe}} {
		if m = c.re.FindStringSubmatch(r.URL.Path); m != nil {
			route = c.name
			break
		}
	}
	if m == nil || m[1] != "o" || m[2] != "r" {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	var pr *fakePR
	if len(m) > 3 {
		n, _ := strconv.Atoi(m[3])
		if n < 1 || n > len(f.prs) {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
			return
		}
		pr = f.prs[n-1]
	}

	switch {
	case route == "pulls" && r.Method == http.MethodPost:
		var in struct{ Title, Head, Base, Body string }
		if err := json.Unmarshal(body, &in); err != nil || in.Title == "" || in.Head == "" || in.Base == "" {
			f.t.Errorf("create pull request: bad body %s (%v)", body, err)
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
			return
		}
		head := in.Head
		if !strings.Contains(head, ":") {
			head = "o:" + head
		}
		for _, p := range f.prs {
			if p.Head == head && p.Base == in.Base && p.State == "open" {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
					"message": "Validation Failed",
					"errors": []map[string]string{{
						"resource": "PullRequest", "code": "custom",
						"message": "A pull request already exists for " + head + ".",
					}},
					"documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
				})
				return
			}
		}
		p := &fakePR{Number: len(f.prs) + 1, Head: head, Base: in.Base, Title: in.Title, Body: in.Body, State: "open"}
		f.prs = append(f.prs, p)
		writeJSON(w, http.StatusCreated, f.json(p))
	case route == "pulls" && r.Method == http.MethodGet:
		var out []any
		for _, p := range f.prs {
			if (q["state"] == "" || q["state"] == "all" || q["state"] == p.State) &&
				(q["head"] == "" || q["head"] == p.Head) &&
				(q["base"] == "" || q["base"] == p.Base) {
				out = append(out, f.json(p))
			}
		}
		writeJSON(w, http.StatusOK, out)
	case route == "pull" && r.Method == http.MethodGet:
		// GitHub's conditional requests: the same representation has the
		// same ETag, and a 304 is not counted against the rate limit.
		out := f.json(pr)
		b, _ := json.Marshal(out)
		etag := fmt.Sprintf(`W/"%x"`, sha256.Sum256(b))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			f.used--
			f.rateHeaders(w)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, http.StatusOK, out)
	case route == "pull" && r.Method == http.MethodPatch:
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			f.t.Errorf("update pull request: bad body %s", body)
		}
		if v, ok := in["title"].(string); ok {
			pr.Title = v
		}
		if v, ok := in["body"].(string); ok {
			pr.Body = v
		}
		if v, ok := in["state"].(string); ok {
			pr.State = v
		}
		writeJSON(w, http.StatusOK, f.json(pr))
	case route == "comments" && r.Method == http.MethodPost:
		var in struct{ Body string }
		if err := json.Unmarshal(body, &in); err != nil || in.Body == "" {
			f.t.Errorf("comment: bad body %s", body)
		}
		pr.Comments = append(pr.Comments, in.Body)
		writeJSON(w, http.StatusCreated, map[string]any{"id": len(pr.Comments), "body": in.Body})
	case route == "labels" && r.Method == http.MethodPost:
		var labels []string
		if err := json.Unmarshal(body, &labels); err != nil {
			f.t.Errorf("add labels: body %s is not a JSON array of names", body)
		}
		var out []any
		for _, l := range labels {
			if !slices.Contains(pr.Labels, l) {
				pr.Labels = append(pr.Labels, l)
			}
		}
		for _, l := range pr.Labels {
			out = append(out, map[string]any{"name": l})
		}
		writeJSON(w, http.StatusOK, out)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
	}
}

var statusesRe = regexp.MustCompile(`^/api/v3/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]{40})$`)

// setStatus serves POST .../statuses/{sha}: GitHub answers 201 with the
// status it stored, which the client must not need.
func (f *fakeGitHub) setStatus(w http.ResponseWriter, m []string, body []byte) {
	var in struct{ State, Context, Description string }
	if err := json.Unmarshal(body, &in); err != nil || in.State == "" || in.Context == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	if m[1] != "o" || m[2] != "r" {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	f.statuses = append(f.statuses, m[3]+" "+in.State+" "+in.Context+" "+in.Description)
	writeJSON(w, http.StatusCreated, map[string]any{"id": len(f.statuses), "state": in.State, "creator": map[string]any{"login": "x"}})
}

func (f *fakeGitHub) rateHeaders(w http.ResponseWriter) {
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(fakeLimit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(fakeLimit-f.used))
	w.Header().Set("X-RateLimit-Reset", strconv.Itoa(fakeReset))
}

func (f *fakeGitHub) json(p *fakePR) map[string]any {
	owner, branch, _ := strings.Cut(p.Head, ":")
	labels := []any{}
	for _, l := range p.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	out := map[string]any{
		"number":   p.Number,
		"state":    p.State,
		"title":    p.Title,
		"body":     p.Body,
		"html_url": fmt.Sprintf("https://github.example/o/r/pull/%d", p.Number),
		"head":     map[string]any{"ref": branch, "label": p.Head, "user": map[string]any{"login": owner}, "repo": map[string]any{"full_name": owner + "/r"}},
		"base":     map[string]any{"ref": p.Base},
		"labels":   labels,
	}
	if p.Merged {
		out["merged_at"] = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Format(time.RFC3339)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// calls returns the recorded requests as "METHOD path?query" and clears them.
func (f *fakeGitHub) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		out = append(out, r.String())
	}
	f.requests = nil
	return out
}

func (f *fakeGitHub) last() request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeGitHub) all() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}
