package controllers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/credentials"
	gh "github.com/atzedevries/canaryop/gitops/github"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
)

// fakeGitHub speaks the few GitHub REST endpoints canaryop uses and records
// what it was asked.
type fakeGitHub struct {
	*httptest.Server
	mu      sync.Mutex
	created []map[string]any
	labels  []string
	state   string // "open", "closed" or "merged"
	// statuses are the commit statuses set: "sha state context description".
	statuses []string
	// head is the branch of the pull request; comments were added to it.
	head     string
	comments []string
}

func newFakeGitHub(t testing.TB) *fakeGitHub {
	f := &fakeGitHub{state: "open"}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+plantedToken {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		pr := func() string {
			merged := f.state == "merged"
			state := f.state
			if merged {
				state = "closed"
			}
			return fmt.Sprintf(`{"number":7,"html_url":"https://github.example.com/team/apps/pull/7","state":%q,"merged":%t,"head":{"ref":%q,"repo":{"full_name":"team/apps"}}}`,
				state, merged, f.head)
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v3/repos/team/apps/pulls":
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			f.created = append(f.created, m)
			f.head, _ = m["head"].(string)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, pr())
		case r.Method == http.MethodPost && r.URL.Path == "/api/v3/repos/team/apps/issues/7/labels":
			var l []string
			_ = json.Unmarshal(body, &l)
			f.labels = append(f.labels, l...)
			fmt.Fprint(w, `[]`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v3/repos/team/apps/pulls/7":
			fmt.Fprint(w, pr())
		case r.Method == http.MethodPatch && r.URL.Path == "/api/v3/repos/team/apps/pulls/7":
			var m map[string]string
			_ = json.Unmarshal(body, &m)
			if m["state"] == "closed" {
				f.state = "closed"
			}
			fmt.Fprint(w, pr())
		case r.Method == http.MethodPost && r.URL.Path == "/api/v3/repos/team/apps/issues/7/comments":
			var m map[string]string
			_ = json.Unmarshal(body, &m)
			f.comments = append(f.comments, m["body"])
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":1}`)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v3/repos/team/apps/statuses/"):
			var m map[string]string
			_ = json.Unmarshal(body, &m)
			sha := strings.TrimPrefix(r.URL.Path, "/api/v3/repos/team/apps/statuses/")
			f.statuses = append(f.statuses, sha+" "+m["state"]+" "+m["context"]+" "+m["description"])
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":1,"state":"pending","description":"GitHub's own words"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"Not Found"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGitHub) commitStatuses() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.statuses...)
}

func (f *fakeGitHub) set(state string) { f.mu.Lock(); f.state = state; f.mu.Unlock() }

func (f *fakeGitHub) snapshot() ([]map[string]any, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.created...), append([]string(nil), f.labels...)
}

// pullRequestWriter writes back to repo, opening pull requests on the
// GitHub stand-in with the admin's Secret for the repository.
func pullRequestWriter(t *testing.T, g *WithT, repo *gitRepo, github *fakeGitHub) gitops.Writer {
	t.Helper()
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	credsNS := env.NewNamespace(t)
	secret := credentialSecret(credsNS, repo)
	// The token is sent only to the API of the repository's own host: the
	// admin names the (stand-in) GitHub API of the test Git server's host.
	secret.StringData["githubAPIURL"] = github.URL + "/api/v3/"
	g.Expect(env.Client.Create(t.Context(), secret)).To(Succeed())
	w, err := gitops.New(gitops.Options{
		Cache:       cache,
		Credentials: credentials.New(env.Client, credsNS),
		PullRequests: func(c credentials.Creds) (gh.PullRequests, error) {
			return gh.New(nil, github.URL+"/api/v3/", c.GitHubToken)
		},
	})
	g.Expect(err).NotTo(HaveOccurred())
	return w
}

func TestWriteBackPullRequest(t *testing.T) {
	g := NewWithT(t)
	repo := newGitRepo(t)
	github := newFakeGitHub(t)
	prom := newFakeProm(t)

	startManager(t, pullRequestWriter(t, g, repo, github), func(r *controllers.CanaryAppReconciler) { r.PullRequestPoll = 500 * time.Millisecond })
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/canaryapp-sample", Rollback: v1.WritePullRequest}
		holdAtFirstStep(a)
	})
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")

	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) string {
			if a.Status.WriteBack == nil {
				return ""
			}
			return a.Status.WriteBack.PullRequestURL + " " + a.Status.WriteBack.PullRequestState
		}, Equal("https://github.example.com/team/apps/pull/7 open")),
		haveCondition(v1.ConditionWriteBack, metav1.ConditionTrue, v1.ReasonPullRequestOpen),
	))
	ref := get(g, app).Status.WriteBack.PullRequest
	g.Expect(ref).NotTo(BeNil())
	g.Expect(*ref).To(Equal(v1.PullRequestRef{Repository: "team/apps", Branch: ref.Branch, Base: "main", Number: 7}))
	g.Expect(ref.Branch).To(HavePrefix("canaryop/" + ns + "/" + appName + "/"))
	created, labels := github.snapshot()
	g.Expect(created).To(HaveLen(1))
	g.Expect(created[0]["base"]).To(Equal("main"))
	g.Expect(created[0]["head"]).To(HavePrefix("canaryop/"))
	g.Expect(created[0]["title"]).To(ContainSubstring("roll back"))
	g.Expect(created[0]["body"]).To(ContainSubstring("v3"))
	g.Expect(labels).To(ContainElements("canaryop", "canary-rolled-back"))

	// The branch holds the reverted image and the failure record; main is
	// untouched until a person merges.
	repo.fetch()
	head := created[0]["head"].(string)
	onBranch := repo.git("show", "origin/"+head+":apps/canaryapp-sample/canaryapp.yaml")
	g.Expect(onBranch).To(ContainSubstring("image: " + image("v1")))
	g.Expect(onBranch).To(ContainSubstring(image("v3")))
	g.Expect(repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")).To(ContainSubstring("image: " + image("v1")))
	g.Expect(strings.Count(repo.git("log", "--format=%s", "origin/main"), "\n")).To(Equal(1))
	g.Expect(toJSON(get(g, app).Status)).NotTo(ContainSubstring(plantedToken))

	// A person closes the pull request without merging: the cluster stays
	// on the stable image and the status says so.
	github.set("closed")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionWriteBack, metav1.ConditionFalse, v1.ReasonPullRequestClosed))
	final := get(g, app)
	g.Expect(final.Status.WriteBack.PullRequestState).To(Equal("closed"))
	g.Expect(final.Status.StableImage).To(Equal(image("v1")))
	g.Expect(condition(final, v1.ConditionWriteBack).Message).To(ContainSubstring("stays on " + image("v1")))
	created, _ = github.snapshot()
	g.Expect(created).To(HaveLen(1), "following the pull request never opens another")
}
