//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/test/e2e/stack"
)

// gitHubStandIn speaks the GitHub REST endpoints canaryop uses for pull
// requests, on 127.0.0.1, and records what it was asked. GitHub cannot be
// reached here; the pull requests' branches are real, on the stack's Git
// server.
type gitHubStandIn struct {
	*httptest.Server
	token string

	mu         sync.Mutex
	pulls      []map[string]any    // created, in order; number = index + 1
	state      map[int]string      // "open", "closed" or "merged"
	statuses   map[string][]string // commit statuses per SHA: "state context description"
	unexpected []string
}

var (
	pullPath   = regexp.MustCompile(`^/api/v3/repos/[^/]+/[^/]+/(pulls|pulls/([0-9]+)|issues/([0-9]+)/labels)$`)
	statusPath = regexp.MustCompile(`^/api/v3/repos/` + approvalsRepo + `/statuses/([0-9a-f]{40})$`)
)

func newGitHubStandIn(t *testing.T, token string) *gitHubStandIn {
	g := &gitHubStandIn{token: token, state: map[int]string{}, statuses: map[string][]string{}}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

func (g *gitHubStandIn) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if s := statusPath.FindStringSubmatch(r.URL.Path); s != nil && r.Method == http.MethodPost && r.Header.Get("Authorization") == "Bearer "+g.token {
		var body map[string]string
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		_ = json.Unmarshal(b, &body)
		g.statuses[s[1]] = append(g.statuses[s[1]], body["state"]+" "+body["context"]+" "+body["description"])
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":1}`)
		return
	}
	m := pullPath.FindStringSubmatch(r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+g.token || m == nil {
		g.unexpected = append(g.unexpected, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found"}`)
		return
	}
	switch {
	case r.Method == http.MethodPost && m[1] == "pulls":
		var body map[string]any
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		_ = json.Unmarshal(b, &body)
		g.pulls = append(g.pulls, body)
		n := len(g.pulls)
		g.state[n] = "open"
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, g.pull(n))
	case r.Method == http.MethodGet && m[2] != "":
		n, _ := strconv.Atoi(m[2])
		if _, ok := g.state[n]; !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"Not Found"}`)
			return
		}
		fmt.Fprint(w, g.pull(n))
	case r.Method == http.MethodPost && m[3] != "":
		fmt.Fprint(w, `[]`)
	default:
		g.unexpected = append(g.unexpected, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found"}`)
	}
}

func (g *gitHubStandIn) pull(n int) string {
	state, merged := g.state[n], g.state[n] == "merged"
	if merged {
		state = "closed"
	}
	return fmt.Sprintf(`{"number":%d,"html_url":"https://github.example.com/team/apps/pull/%d","state":%q,"merged":%t}`, n, n, state, merged)
}

func (g *gitHubStandIn) set(n int, state string) { g.mu.Lock(); g.state[n] = state; g.mu.Unlock() }

func (g *gitHubStandIn) created() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.pulls...)
}

func (g *gitHubStandIn) statusesOn(sha string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.statuses[sha]...)
}

// waitStatus waits until the commit sha has a status of the app's context
// whose state and description start with prefix.
func (g *gitHubStandIn) waitStatus(ctx context.Context, t *testing.T, sha, statusContext, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		for _, s := range g.statusesOn(sha) {
			state, rest, _ := strings.Cut(s, " ")
			if desc, ok := strings.CutPrefix(rest, statusContext+" "); ok && strings.HasPrefix(state+" "+desc, prefix) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no commit status %q on %s; it has %v", prefix, sha, g.statusesOn(sha))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (g *gitHubStandIn) unexpectedRequests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.unexpected...)
}

// approvalRequested: the canary of image waits at the gate and its approval
// pull request is open.
func approvalRequested(image string) func(*v1.CanaryApp, stack.Weights) bool {
	return func(a *v1.CanaryApp, w stack.Weights) bool {
		wb := a.Status.WriteBack
		return stack.IsWaitingForApproval(image)(a, w) && wb != nil && wb.Outcome == v1.OutcomeApprovalRequested &&
			wb.Image == image && !wb.Pending && wb.PullRequestState == "open"
	}
}

// TestApprovalInGit: an app that reviews promotions in pull requests and
// requires approval. v2 passes its analysis and waits at the gate; the
// operator opens the approval pull request (against the GitHub stand-in,
// its branch on the Git server); a person merges it (the approval lands on
// the branch Argo CD syncs) and v2 is promoted. v4 waits at the gate too;
// its pull request is closed unmerged, so v4 is rolled back as rejected in
// review and the failure record is committed and synced.
// approvalsRepo is one of the stack's GIT_EXTRA_REPOS (hack/e2e.sh), at an
// owner/name path as GitHub addresses repositories.
const approvalsRepo = "platform/approvals"

func TestApprovalInGit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	repoURL, err := env.RepoURL(approvalsRepo)
	if err != nil {
		t.Fatal(err)
	}
	tl := stack.NewTimeline(os.Stdout, "[e2e-approval]")
	f, err := base.ForRepo(ctx, repoURL, "approvals", tl)
	if err != nil {
		t.Fatal(err)
	}
	app := stack.App{Name: "e2e-approval", Namespace: ns, Dir: "apps/e2e-approval", Application: "e2e-approval", Project: "approvals"}
	if err := f.Cluster.ApplyTeamProject(ctx, app.Project, repoURL, app.Namespace); err != nil {
		t.Fatal(err)
	}
	watch(ctx, t, tl, f, app.Namespace, app.Name, app.Application)
	token := "gh-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	gh := newGitHubStandIn(t, token)
	// The admin's Secret for this repository: pushes with the Git server's
	// credentials, pull requests on the GitHub stand-in of the same host.
	err = f.Cluster.GiveGitCredentials(ctx, "git-approvals", repoURL, map[string]string{
		credentials.KeyNamespaces: app.Namespace, "githubAPIURL": gh.URL + "/api/v3/", "githubToken": token,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stack.OperatorNamespace, Name: "git-approvals"}}
		if err := f.Cluster.Client.Delete(context.Background(), s); err != nil {
			t.Error(err)
		}
	})

	m, err := stack.DemoManifest(env.Root, app.Name, app.Namespace, env.Get("PROM_URL"), f.Short)
	if err == nil {
		m, err = stack.SetManualApproval(m)
	}
	if err != nil {
		t.Fatal(err)
	}
	m = []byte(strings.Replace(string(m), "  gitops: {}\n", "  gitops:\n    promotion: PullRequest\n", 1))
	if _, err := f.SeedManifest(ctx, app, m, v1Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "stable at "+v1Image, stack.IsStable(v1Image)); err != nil {
		t.Fatal(err)
	}

	// v2 waits at the gate; the approval pull request is opened.
	releaseV2, err := f.Release(ctx, app, v2Image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v2 at the gate with its approval pull request open", approvalRequested(v2Image)); err != nil {
		t.Fatal(err)
	}
	pulls := gh.created()
	if len(pulls) != 1 || len(pulls[0]) == 0 {
		t.Fatalf("pull requests opened: %d, want 1", len(pulls))
	}
	head, _ := pulls[0]["head"].(string)
	body, _ := pulls[0]["body"].(string)
	if pulls[0]["base"] != env.Get("GIT_BRANCH") || !strings.HasPrefix(head, "canaryop/"+app.Namespace+"/"+app.Name+"/approvalrequested-") ||
		!strings.Contains(pulls[0]["title"].(string), "approve :v2") || !strings.Contains(body, "## Approval requested") ||
		!strings.Contains(body, "| 50% |") {
		t.Errorf("approval pull request %v", pulls[0])
	}
	if strings.Contains(fmt.Sprint(pulls), token) {
		t.Error("the pull request carries the token")
	}
	refs, err := f.Repo.Refs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if refs["refs/heads/"+head] == "" {
		t.Errorf("the approval branch %s is not on the Git server: %v", head, refs)
	}
	if st, err := f.WaitApplication(ctx, app, syncTimeout, "Suspended"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("Argo CD at the gate: %s", st.Health)
	}
	// The verdict lands on the commit that released v2, the one Argo CD
	// synced when the canary started.
	statusContext := "canaryop/canary/" + app.Namespace + "/" + app.Name
	gh.waitStatus(ctx, t, releaseV2.SHA, statusContext, "pending :v2 waits for approval at ")

	// A person merges it: the approval lands on the synced branch.
	if _, err := f.Approve(ctx, app, v2Image); err != nil {
		t.Fatal(err)
	}
	gh.set(1, "merged")
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v2 promoted after the approval", stack.IsStable(v2Image))
	if err != nil {
		t.Fatal(err)
	}
	if a.Status.LastAction == nil || a.Status.LastAction.Action != v1.ActionApprove {
		t.Errorf("lastAction %+v, want the approval", a.Status.LastAction)
	}
	gh.waitStatus(ctx, t, releaseV2.SHA, statusContext, "success promoted :v2")

	// v4 waits at the gate; its pull request is closed unmerged.
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
	releaseV4, err := f.Release(ctx, app, v4Image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v4 at the gate with its approval pull request open", approvalRequested(v4Image)); err != nil {
		t.Fatal(err)
	}
	n := len(gh.created())
	gh.set(n, "closed")
	a, err = f.WaitCanaryApp(ctx, app, canaryTimeout, "v4 rejected in review, rolled back and written back", func(a *v1.CanaryApp, w stack.Weights) bool {
		c := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Reason == v1.ReasonRejectedInReview && stack.HasWrittenBack(v1.OutcomeRolledBack, v2Image)(a, w) && w.Canary == 0
	})
	if err != nil {
		t.Fatal(err)
	}
	gh.waitStatus(ctx, t, releaseV4.SHA, statusContext, "failure rolled back :v4")
	if err := f.RefreshAfterWriteBack(ctx, app); err != nil {
		t.Fatal(err)
	}
	g, err := f.GitApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if fi := stack.FailedImage(g, v4Image); g.Spec.Image != v2Image || fi == nil || !strings.Contains(fi.Reason, "rejected in review") {
		t.Errorf("Git after the rejection: image %s, failedImages %v", g.Spec.Image, g.Spec.FailedImages)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
	if u := gh.unexpectedRequests(); len(u) > 0 {
		t.Errorf("requests the GitHub stand-in does not serve (or without the token): %v", u)
	}
	_ = a
}
