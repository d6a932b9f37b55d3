package gitops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/internal/testgit"
)

const (
	gitUser     = "canaryop"
	gitToken    = "ghp_PLANTEDwriterTOKEN13579"
	githubToken = "ghp_PLANTEDgithubTOKEN24680"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the Git test server logs every request
	os.Exit(m.Run())
}

const shopManifest = `# Shop front end, released by canaryop.
apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: web
spec:
  image: ghcr.io/acme/web:v3 # bumped by CI
  imageListenPort: 8080
  replicas: 3
  testReplicas: 1
  prometheusQuery: 'increase(istio_requests_total{response_code=~"5.*"}[20s]) > 2'
  prometheusURL: http://prometheus.istio-system:9090
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  a: b
`

// env is a real Git server with authentication, a GitHub API stand-in, and
// a writer wired to both through a credential Secret.
type env struct {
	t      testing.TB
	srv    *gittestserver.GitServer
	gh     *fakeGitHub
	writer *GitWriter
	work   string
}

func newEnv(t testing.TB, files map[string]string, objs ...client.Object) *env {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	srv.Auth(gitUser, gitToken).AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.StopHTTP(); _ = os.RemoveAll(srv.Root()) })
	e := &env{t: t, srv: srv, gh: newFakeGitHub(t)}

	e.work = t.TempDir()
	e.git("init", "-q", "-b", "main")
	for name, content := range files {
		p := filepath.Join(e.work, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.git("add", "-A")
	e.git("commit", "-q", "-m", "seed")
	e.git("remote", "add", "origin", srv.HTTPAddressWithCredentials()+"/acme/apps.git")
	e.git("push", "-q", "origin", "main")

	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	scheme.AddKnownTypeWithName(argocd.ApplicationGVK, &unstructured.Unstructured{})
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "canaryop-system", Name: "acme", Labels: map[string]string{credentials.LabelKey: "true"}},
		Data: map[string][]byte{
			"url": []byte(srv.HTTPAddress() + "/acme/"), "username": []byte(gitUser), "password": []byte(gitToken),
			"githubToken": []byte(githubToken), "githubAPIURL": []byte(e.gh.srv.URL + "/api/v3/"),
			// The admin lets namespace shop write under apps/ only.
			"namespaces": []byte("shop"), "paths": []byte("apps/"),
		},
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(objs, secret)...).Build()
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir(), Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.writer, err = New(Options{Cache: cache, Credentials: credentials.New(reader, "canaryop-system"), Discoverer: argocd.New(reader, "argocd")})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) url() string { return e.srv.HTTPAddress() + "/acme/apps.git" }

func (e *env) git(args ...string) string {
	e.t.Helper()
	return testgit.Run(e.t, e.work, args...)
}

// remote returns `git show <rev>:<path>` after a fetch.
func (e *env) show(rev string) string {
	e.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
	return e.git("show", rev)
}

func (e *env) log(branch string) []string {
	e.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
	return strings.Split(strings.TrimSpace(e.git("log", "--format=%s", "origin/"+branch)), "\n")
}

func canaryApp(gitops *v1.GitOpsSpec, wb *v1.WriteBackStatus, checks ...v1.AnalysisCheck) *v1.CanaryApp {
	return &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: v1.CanaryAppSpec{Image: "ghcr.io/acme/web:v3", PrometheusQuery: `increase(istio_requests_total{response_code=~"5.*"}[20s]) > 2`,
			GitOps: gitops},
		Status: v1.CanaryAppStatus{WriteBack: wb, Checks: checks},
	}
}

func rollback(at time.Time) *v1.WriteBackStatus {
	return &v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, Image: "ghcr.io/acme/web:v2", FailedImage: "ghcr.io/acme/web:v3",
		Reason: "AnalysisFailed: 5xx rate above threshold", DecidedAt: metav1.NewTime(at), Pending: true}
}

func checks(start time.Time, image string) []v1.AnalysisCheck {
	return []v1.AnalysisCheck{
		{Time: metav1.NewTime(start), Image: image, Weight: 10, Value: "empty", Verdict: v1.CheckPass},
		{Time: metav1.NewTime(start.Add(2 * time.Second)), Image: image, Weight: 10, Value: "3", Verdict: v1.CheckFail},
	}
}

func noSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, gitToken) || strings.Contains(s, githubToken) {
			t.Fatalf("token leaked in %q", s)
		}
	}
}

func TestRollbackCommit(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest, "apps/other/x.yaml": "x: 1\n"})
	now := time.Now()
	app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, rollback(now), checks(now.Add(-time.Minute), "ghcr.io/acme/web:v3")...)
	ctx := context.Background()

	res, err := e.writer.Write(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commit) != 40 || res.PullRequestURL != "" {
		t.Fatalf("result %+v", res)
	}
	noSecrets(t, res.Message)
	body := e.show("origin/main:apps/shop/web.yaml")
	for _, want := range []string{
		"# Shop front end, released by canaryop.",
		"  image: ghcr.io/acme/web:v2 # bumped by CI",
		"failedImages:",
		"- image: ghcr.io/acme/web:v3",
		"kind: ConfigMap",
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("manifest lacks %q:\n%s", want, body)
		}
	}
	msg := e.show("origin/main")
	if !strings.Contains(msg, "canaryapp shop/web: roll back to") || !strings.Contains(msg, "Canaryop-Outcome: RolledBack") {
		t.Fatalf("commit message:\n%s", msg)
	}
	noSecrets(t, msg)

	// Re-reconciling: the manifest already holds the outcome.
	again, err := e.writer.Write(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if again.Commit != res.Commit || len(e.log("main")) != 2 {
		t.Fatalf("re-run made another commit: %+v, log %v", again, e.log("main"))
	}
}

func TestRollbackKeepsNewerImage(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": strings.Replace(shopManifest, "web:v3", "web:v4", 1)})
	now := time.Now()
	app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, rollback(now), checks(now.Add(-time.Minute), "ghcr.io/acme/web:v3")...)
	res, err := e.writer.Write(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	body := e.show("origin/main:apps/shop/web.yaml")
	if !strings.Contains(body, "image: ghcr.io/acme/web:v4") || !strings.Contains(body, "- image: ghcr.io/acme/web:v3") {
		t.Fatalf("manifest:\n%s", body)
	}
	if !strings.Contains(res.Message, "newer image ghcr.io/acme/web:v4") {
		t.Fatalf("message %q does not say the newer image was kept", res.Message)
	}
}

func TestPromotion(t *testing.T) {
	promoted := func(at time.Time) *v1.WriteBackStatus {
		return &v1.WriteBackStatus{Outcome: v1.OutcomePromoted, Image: "ghcr.io/acme/web:v3", Reason: "passed analysis", DecidedAt: metav1.NewTime(at), Pending: true}
	}
	old := strings.Replace(shopManifest, "web:v3", "web:v2", 1)

	t.Run("image changed with kubectl is written to Git", func(t *testing.T) {
		e := newEnv(t, map[string]string{"apps/shop/web.yaml": old})
		// The canary started after the last commit: Git's v2 is the old
		// stable image.
		start := time.Now().Add(2 * time.Second)
		app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, promoted(start.Add(time.Minute)), checks(start, "ghcr.io/acme/web:v3")...)
		res, err := e.writer.Write(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		if body := e.show("origin/main:apps/shop/web.yaml"); !strings.Contains(body, "image: ghcr.io/acme/web:v3") || strings.Contains(body, "failedImages") {
			t.Fatalf("manifest:\n%s", body)
		}
		if !strings.Contains(e.show("origin/main"), "promote") {
			t.Fatalf("subject %q", e.log("main")[0])
		}
		_ = res
	})
	t.Run("a commit after the canary started is kept", func(t *testing.T) {
		e := newEnv(t, map[string]string{"apps/shop/web.yaml": old})
		start := time.Now().Add(-time.Hour)
		app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, promoted(time.Now()), checks(start, "ghcr.io/acme/web:v3")...)
		res, err := e.writer.Write(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		if log := e.log("main"); len(log) != 1 {
			t.Fatalf("promotion overwrote a newer commit: %v", log)
		}
		if !strings.Contains(res.Message, "kept") || !strings.Contains(res.Message, "Git already holds") {
			t.Fatalf("message %q", res.Message)
		}
	})
	t.Run("the recorded previous image is replaced, whatever the history", func(t *testing.T) {
		e := newEnv(t, map[string]string{"apps/shop/web.yaml": old})
		wb := promoted(time.Now())
		wb.PreviousImage = "ghcr.io/acme/web:v2"
		// The manifest changed after the canary started (another field), yet
		// it still names the old stable image: it gets the promoted one.
		app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, wb, checks(time.Now().Add(-time.Hour), "ghcr.io/acme/web:v3")...)
		if _, err := e.writer.Write(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		if body := e.show("origin/main:apps/shop/web.yaml"); !strings.Contains(body, "image: ghcr.io/acme/web:v3") {
			t.Fatalf("manifest:\n%s", body)
		}
	})
	t.Run("an image other than the recorded previous one is kept", func(t *testing.T) {
		newer := strings.Replace(shopManifest, "web:v3", "web:v4", 1)
		e := newEnv(t, map[string]string{"apps/shop/web.yaml": newer})
		wb := promoted(time.Now())
		wb.PreviousImage = "ghcr.io/acme/web:v2"
		app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, wb, checks(time.Now().Add(time.Hour), "ghcr.io/acme/web:v3")...)
		res, err := e.writer.Write(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		if log := e.log("main"); len(log) != 1 {
			t.Fatalf("promotion overwrote a newer image: %v", log)
		}
		if !strings.Contains(e.show("origin/main:apps/shop/web.yaml"), "image: ghcr.io/acme/web:v4") {
			t.Fatal("v4 was not kept")
		}
		_ = res
	})
	t.Run("Git already names the promoted image", func(t *testing.T) {
		e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
		app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, promoted(time.Now()), checks(time.Now().Add(-time.Minute), "ghcr.io/acme/web:v3")...)
		if _, err := e.writer.Write(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		if log := e.log("main"); len(log) != 1 {
			t.Fatalf("history %v", log)
		}
	})
}

// TestRollbackPullRequestSaysTheKeptImage checks that the pull request
// describes the edit its commit holds: Git named a newer image, which the
// rollback kept, and the title, body and commit say so.
func TestRollbackPullRequestSaysTheKeptImage(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": strings.Replace(shopManifest, "web:v3", "web:v4", 1)})
	now := time.Now()
	app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop", Rollback: v1.WritePullRequest}, rollback(now), checks(now.Add(-time.Minute), "ghcr.io/acme/web:v3")...)
	res, err := e.writer.Write(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "newer image ghcr.io/acme/web:v4") || res.PullRequestURL == "" {
		t.Fatalf("result %+v", res)
	}
	if pr := e.gh.pr(1); !strings.Contains(pr.Body, "Git already names the newer image") || !strings.Contains(pr.Body, "web:v4") {
		t.Fatalf("pull request body does not say the newer image was kept:\n%s", pr.Body)
	}
	branch := "canaryop/shop/web/rolledback-ghcr.io-acme-web-v3"
	if msg := e.show("origin/" + branch); !strings.Contains(msg, "Canaryop-Kept-Image: ghcr.io/acme/web:v4") {
		t.Fatalf("commit on %s does not name the kept image:\n%s", branch, msg)
	}
}

func TestRollbackPullRequest(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
	now := time.Now()
	app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop", Rollback: v1.WritePullRequest}, rollback(now), checks(now.Add(-time.Minute), "ghcr.io/acme/web:v3")...)
	ctx := context.Background()
	res, err := e.writer.Write(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	branch := "canaryop/shop/web/rolledback-ghcr.io-acme-web-v3"
	if res.PullRequestURL != e.gh.srv.URL+"/acme/apps/pull/1" || res.PullRequestState != "open" {
		t.Fatalf("result %+v", res)
	}
	if log := e.log(branch); len(log) != 2 {
		t.Fatalf("branch history %v", log)
	}
	if log := e.log("main"); len(log) != 1 {
		t.Fatalf("main was written: %v", log)
	}
	pr := e.gh.pr(1)
	if pr.Head != branch || pr.Base != "main" || !strings.Contains(pr.Title, "shop/web") || !strings.Contains(pr.Body, "rolled back") ||
		strings.Join(pr.Labels, ",") != "canaryop,canary-rolled-back" {
		t.Fatalf("pull request %+v", pr)
	}

	// Re-running reuses the branch and the pull request.
	again, err := e.writer.Write(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if again.PullRequestURL != res.PullRequestURL || again.Commit != res.Commit || e.gh.count() != 1 || len(e.log(branch)) != 2 {
		t.Fatalf("re-run: %+v, %d pull requests", again, e.gh.count())
	}

	app.Status.WriteBack.PullRequestURL = res.PullRequestURL
	if state, err := e.writer.PullRequestState(ctx, app); err != nil || state != "open" {
		t.Fatalf("state %q, %v", state, err)
	}
	e.gh.merge(1)
	if state, err := e.writer.PullRequestState(ctx, app); err != nil || state != "merged" {
		t.Fatalf("state %q, %v", state, err)
	}
	e.gh.mu.Lock()
	for _, r := range e.gh.requests {
		noSecrets(t, r)
	}
	e.gh.mu.Unlock()
}

func TestDiscoveryFromArgoCD(t *testing.T) {
	appObj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"source": map[string]any{
		"repoURL": "PLACEHOLDER", "targetRevision": "HEAD", "path": "apps/shop"}}}}
	appObj.SetGroupVersionKind(argocd.ApplicationGVK)
	appObj.SetNamespace("argocd")
	appObj.SetName("shop")
	manages(appObj, "shop", "web")
	// The URL is known once the server runs; build the env in two steps.
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
	_ = unstructured.SetNestedField(appObj.Object, e.url(), "spec", "source", "repoURL")
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	scheme.AddKnownTypeWithName(argocd.ApplicationGVK, &unstructured.Unstructured{})
	e.writer.opts.Discoverer = argocd.New(fake.NewClientBuilder().WithScheme(scheme).WithObjects(appObj).Build(), "argocd")

	now := time.Now()
	app := canaryApp(&v1.GitOpsSpec{}, rollback(now))
	app.Annotations = map[string]string{argocd.TrackingAnnotation: "shop:canary.atze.io/CanaryApp:shop/web"}
	loc, err := e.writer.Locate(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if loc.RepoURL != e.url() || loc.Branch != "main" || loc.Path != "apps/shop" || loc.From != "argocd:argocd/shop" {
		t.Fatalf("location %+v", loc)
	}
	if _, err := e.writer.Write(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.show("origin/main:apps/shop/web.yaml"), "image: ghcr.io/acme/web:v2") {
		t.Fatal("discovered location was not written")
	}
}

// An Application that deploys into the app's namespace but whose status
// does not list the app yet (a first sync, a Git server that was down so
// Argo CD could not compare) is asked again, not stalled on; nothing is
// fetched until it proves the app, and then the write goes through.
func TestDiscoveryWaitsForArgoCDToListTheApp(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
	appObj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"destination": map[string]any{"namespace": "shop"},
		"source":      map[string]any{"repoURL": e.url(), "targetRevision": "HEAD", "path": "apps/shop"}}}}
	appObj.SetGroupVersionKind(argocd.ApplicationGVK)
	appObj.SetNamespace("argocd")
	appObj.SetName("shop")
	scheme := runtime.NewScheme()
	scheme.AddKnownTypeWithName(argocd.ApplicationGVK, &unstructured.Unstructured{})
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(appObj).Build()
	e.writer.opts.Discoverer = argocd.New(c, "argocd")
	app := canaryApp(&v1.GitOpsSpec{}, rollback(time.Now()))
	app.Annotations = map[string]string{argocd.TrackingAnnotation: "shop:canary.atze.io/CanaryApp:shop/web"}
	ctx := context.Background()

	_, err := e.writer.Write(ctx, app)
	var we *Error
	if !errors.As(err, &we) || IsStalled(err) || we.Reason() != v1.ReasonWriteBackFailed || !errors.Is(err, argocd.ErrNotYetProven) {
		t.Fatalf("before Argo CD lists the app: err = %v, want a retried refusal", err)
	}
	if _, err := os.Stat(e.writer.opts.Cache.Path(e.url())); !os.IsNotExist(err) {
		t.Fatalf("an unproven write-back fetched the repository (stat: %v)", err)
	}
	manages(appObj, "shop", "web")
	if err := c.Update(ctx, appObj); err != nil {
		t.Fatal(err)
	}
	if _, err := e.writer.Write(ctx, app); err != nil {
		t.Fatalf("after Argo CD lists the app: %v", err)
	}
	if !strings.Contains(e.show("origin/main:apps/shop/web.yaml"), "image: ghcr.io/acme/web:v2") {
		t.Fatal("the rollback was not written")
	}
}

// manages makes the Application u report, as Argo CD does, that it syncs
// CanaryApp ns/name into ns.
func manages(u *unstructured.Unstructured, ns, name string) {
	_ = unstructured.SetNestedField(u.Object, ns, "spec", "destination", "namespace")
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"group": "canary.atze.io", "kind": "CanaryApp", "namespace": ns, "name": name}}, "status", "resources")
}

// The cross-tenant attack of review finding C1 at the writer: an app in
// namespace evil names shop's repository and folder (explicitly, or through
// a forged Argo CD hint). The write is refused before anything is fetched.
func TestWriteRefusesOtherTenantsLocation(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
	ctx := context.Background()
	attack := func(g *v1.GitOpsSpec, ann map[string]string) error {
		app := canaryApp(g, rollback(time.Now()))
		app.Namespace, app.Annotations = "evil", ann
		_, err := e.writer.Write(ctx, app)
		return err
	}
	for name, err := range map[string]error{
		"explicit location":  attack(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, nil),
		"forged tracking id": attack(&v1.GitOpsSpec{}, map[string]string{argocd.TrackingAnnotation: "shop:canary.atze.io/CanaryApp:evil/web"}),
		"dot-segment URL":    attack(&v1.GitOpsSpec{RepoURL: e.srv.HTTPAddress() + "/acme/x/../apps.git", Path: "apps/shop"}, nil),
	} {
		var we *Error
		if !errors.As(err, &we) || !IsStalled(err) || (we.Reason() != v1.ReasonWriteBackNotPermitted && we.Reason() != v1.ReasonInvalidSpec && we.Reason() != v1.ReasonRepositoryUnknown) {
			t.Errorf("%s: err = %v, want a stalled refusal", name, err)
			continue
		}
		if strings.Contains(err.Error(), "ghcr.io/acme/web") {
			t.Errorf("%s: the refusal quotes the victim's manifest: %v", name, err)
		}
	}
	if _, err := os.Stat(e.writer.opts.Cache.Path(e.url())); !os.IsNotExist(err) {
		t.Fatalf("refused writes fetched the repository (stat: %v)", err)
	}
	if log := e.log("main"); len(log) != 1 {
		t.Fatalf("a refused write-back committed: %v", log)
	}
	// The positive control: shop's own app writes.
	if _, err := e.writer.Write(ctx, canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop"}, rollback(time.Now()))); err != nil {
		t.Fatalf("shop's own write-back: %v", err)
	}
}

// A spec.gitops that differs from the proven Application's source is
// refused: the author cannot redirect a write-back away from where Argo CD
// syncs the app.
func TestWriteRefusesSpecThatDiffersFromArgoCD(t *testing.T) {
	appObj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"source": map[string]any{
		"repoURL": "https://git.example.com/acme/apps.git", "targetRevision": "main", "path": "apps/shop"}}}}
	appObj.SetGroupVersionKind(argocd.ApplicationGVK)
	appObj.SetNamespace("argocd")
	appObj.SetName("shop")
	manages(appObj, "shop", "web")
	scheme := runtime.NewScheme()
	scheme.AddKnownTypeWithName(argocd.ApplicationGVK, &unstructured.Unstructured{})
	w := &GitWriter{opts: Options{Discoverer: argocd.New(fake.NewClientBuilder().WithScheme(scheme).WithObjects(appObj).Build(), "argocd")}}
	ann := map[string]string{argocd.TrackingAnnotation: "shop:canary.atze.io/CanaryApp:shop/web"}
	for name, g := range map[string]*v1.GitOpsSpec{
		"repoURL": {RepoURL: "https://git.example.com/other/apps.git"},
		"path":    {Path: "apps/payments"},
		"branch":  {Branch: "production"},
	} {
		app := canaryApp(g, rollback(time.Now()))
		app.Annotations = ann
		_, err := w.Locate(context.Background(), app)
		var we *Error
		if !errors.As(err, &we) || we.Reason() != v1.ReasonWriteBackNotPermitted {
			t.Errorf("%s: err = %v, want WriteBackNotPermitted", name, err)
		}
	}
	app := canaryApp(&v1.GitOpsSpec{Path: "apps/shop/web.yaml"}, rollback(time.Now()))
	app.Annotations = ann
	loc, err := w.Locate(context.Background(), app)
	if err != nil || !loc.Proven || loc.DefaultNamespace != "shop" || loc.Path != "apps/shop/web.yaml" {
		t.Fatalf("a file inside the Application's path: %+v, %v", loc, err)
	}
}

func TestStalledErrors(t *testing.T) {
	e := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
	now := time.Now()
	ctx := context.Background()
	cases := []struct {
		name   string
		gitops *v1.GitOpsSpec
		reason string
	}{
		{"no credentials", &v1.GitOpsSpec{RepoURL: "https://git.example.com/x/y.git", Path: "apps"}, v1.ReasonNoCredentials},
		{"unknown location", &v1.GitOpsSpec{}, v1.ReasonRepositoryUnknown},
		{"missing branch", &v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/shop", Branch: "release"}, v1.ReasonRepositoryUnknown},
		{"missing path", &v1.GitOpsSpec{RepoURL: e.url(), Path: "apps/nope"}, v1.ReasonWriteBackFailed},
		{"no document", &v1.GitOpsSpec{RepoURL: e.url(), Path: "apps"}, v1.ReasonWriteBackFailed},
	}
	for _, c := range cases {
		app := canaryApp(c.gitops, rollback(now))
		if c.name == "no document" {
			app.Name = "api"
		}
		_, err := e.writer.Write(ctx, app)
		var we *Error
		if !errors.As(err, &we) || we.Reason() != c.reason || !IsStalled(err) {
			t.Fatalf("%s: err = %v, want a stalled %s", c.name, err, c.reason)
		}
		noSecrets(t, err.Error())
	}
	if errors.Is(fmt.Errorf("x: %w", credentials.ErrNoCredentials), ErrNoCredentials) != true {
		t.Fatal("ErrNoCredentials is not credentials.ErrNoCredentials")
	}
	if log := e.log("main"); len(log) != 1 {
		t.Fatalf("a failed write-back committed: %v", log)
	}
	// A wrong token is a credential problem a person must fix, and is never
	// shown.
	bad := newEnv(t, map[string]string{"apps/shop/web.yaml": shopManifest})
	bad.srv.Auth(gitUser, "another-password")
	bad.srv.StopHTTP()
	_ = bad.srv.StartHTTP()
	_, err := bad.writer.Write(ctx, canaryApp(&v1.GitOpsSpec{RepoURL: bad.url(), Path: "apps/shop"}, rollback(now)))
	var we *Error
	if !errors.As(err, &we) || we.Reason() != v1.ReasonNoCredentials {
		t.Fatalf("wrong token: %v", err)
	}
	noSecrets(t, err.Error())
}

func TestModeNone(t *testing.T) {
	w := &GitWriter{}
	res, err := w.Write(context.Background(), canaryApp(&v1.GitOpsSpec{Rollback: v1.WriteNone}, rollback(time.Now())))
	if err != nil || res.Commit != "" || !strings.Contains(res.Message, "disabled") {
		t.Fatalf("%+v %v", res, err)
	}
	if Mode(nil, v1.OutcomePromoted) != v1.WriteNone || Mode(&v1.GitOpsSpec{}, v1.OutcomePromoted) != v1.WriteCommit ||
		Mode(&v1.GitOpsSpec{Promotion: v1.WritePullRequest}, v1.OutcomePromoted) != v1.WritePullRequest {
		t.Fatal("Mode defaults")
	}
}

func TestBranchName(t *testing.T) {
	for _, c := range []struct {
		wb   v1.WriteBackStatus
		want string
	}{
		{v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, Image: "a:v1", FailedImage: "registry:5000/team/app:v2"}, "canaryop/ns/app/rolledback-registry-5000-team-app-v2"},
		{v1.WriteBackStatus{Outcome: v1.OutcomePromoted, Image: "app@sha256:" + strings.Repeat("a", 64)}, "canaryop/ns/app/promoted-app-" + strings.Repeat("a", 64)},
	} {
		if got := BranchName("ns", "app", &c.wb); got != c.want {
			t.Fatalf("BranchName = %q, want %q", got, c.want)
		}
	}
	wb := &v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, Image: "a:v1", FailedImage: "a:v2"}
	if BranchName("team", "b-pay", wb) == BranchName("team-b", "pay", wb) {
		t.Fatal("two apps share a pull request branch")
	}
}

// FuzzBranchNameInjective: different (namespace, name) pairs of DNS labels
// never give the same branch.
func FuzzBranchNameInjective(f *testing.F) {
	f.Add("team", "b-pay", "team-b", "pay")
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	wb := &v1.WriteBackStatus{Outcome: v1.OutcomePromoted, Image: "app:v1"}
	f.Fuzz(func(t *testing.T, ns1, n1, ns2, n2 string) {
		for _, s := range []string{ns1, n1, ns2, n2} {
			if len(s) > 63 || !label.MatchString(s) {
				return
			}
		}
		if (ns1 != ns2 || n1 != n2) && BranchName(ns1, n1, wb) == BranchName(ns2, n2, wb) {
			t.Fatalf("%s/%s and %s/%s share a branch", ns1, n1, ns2, n2)
		}
	})
}

// fakeGitHub implements the few GitHub REST endpoints the github package
// calls for pull requests, and checks the token on every request.
type fakeGitHub struct {
	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	prs      []*fakePR
	requests []string
}

type fakePR struct {
	Number      int
	Head, Base  string
	Title, Body string
	Labels      []string
	State       string
	Merged      bool
}

func newFakeGitHub(t testing.TB) *fakeGitHub {
	f := &fakeGitHub{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

var (
	pullsPath  = regexp.MustCompile(`^/api/v3/repos/acme/apps/pulls$`)
	pullPathRe = regexp.MustCompile(`^/api/v3/repos/acme/apps/pulls/([0-9]+)$`)
	labelsPath = regexp.MustCompile(`^/api/v3/repos/acme/apps/issues/([0-9]+)/labels$`)
)

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, r.Method+" "+r.URL.String()+" "+string(body))
	if r.Header.Get("Authorization") != "Bearer "+githubToken {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	var in struct {
		Title, Head, Base, Body string
	}
	_ = json.Unmarshal(body, &in)
	switch {
	case pullsPath.MatchString(r.URL.Path) && r.Method == http.MethodPost:
		for _, p := range f.prs {
			if p.Head == in.Head && p.State == "open" {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprintf(w, `{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:%s."}]}`, in.Head)
				return
			}
		}
		p := &fakePR{Number: len(f.prs) + 1, Head: in.Head, Base: in.Base, Title: in.Title, Body: in.Body, State: "open"}
		f.prs = append(f.prs, p)
		w.WriteHeader(http.StatusCreated)
		f.write(w, p)
	case pullsPath.MatchString(r.URL.Path) && r.Method == http.MethodGet:
		head := strings.TrimPrefix(r.URL.Query().Get("head"), "acme:")
		var out []map[string]any
		for _, p := range f.prs {
			if p.Head == head && p.State == r.URL.Query().Get("state") {
				out = append(out, f.json(p))
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case pullPathRe.MatchString(r.URL.Path):
		n, _ := strconv.Atoi(pullPathRe.FindStringSubmatch(r.URL.Path)[1])
		if n < 1 || n > len(f.prs) {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		p := f.prs[n-1]
		if r.Method == http.MethodPatch {
			p.Title, p.Body = in.Title, in.Body
		}
		f.write(w, p)
	case labelsPath.MatchString(r.URL.Path) && r.Method == http.MethodPost:
		n, _ := strconv.Atoi(labelsPath.FindStringSubmatch(r.URL.Path)[1])
		var labels []string
		_ = json.Unmarshal(body, &labels)
		p := f.prs[n-1]
		p.Labels = append(p.Labels, labels...)
		_ = json.NewEncoder(w).Encode([]any{})
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

func (f *fakeGitHub) json(p *fakePR) map[string]any {
	var labels []map[string]any
	for _, l := range p.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	return map[string]any{"number": p.Number, "state": p.State, "merged": p.Merged, "title": p.Title, "body": p.Body,
		"html_url": fmt.Sprintf("%s/acme/apps/pull/%d", f.srv.URL, p.Number), "labels": labels,
		"head": map[string]any{"ref": p.Head}, "base": map[string]any{"ref": p.Base}}
}

func (f *fakeGitHub) write(w http.ResponseWriter, p *fakePR) {
	_ = json.NewEncoder(w).Encode(f.json(p))
}

func (f *fakeGitHub) pr(n int) fakePR {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.prs[n-1]
}

func (f *fakeGitHub) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.prs)
}

func (f *fakeGitHub) merge(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prs[n-1].State, f.prs[n-1].Merged = "closed", true
}

// TestManyAppsFinishAtOnce writes the outcomes of many CanaryApps kept in
// one repository at the same time, while a person pushes too: every record
// lands exactly once. Logs at every verbosity are captured and hold no token.
func TestManyAppsFinishAtOnce(t *testing.T) {
	const apps = 8
	files := map[string]string{}
	for i := range apps {
		files[fmt.Sprintf("apps/app%d/canaryapp.yaml", i)] = strings.Replace(shopManifest, "name: web\nspec:", fmt.Sprintf("name: app%d\nspec:", i), 1)
	}
	e := newEnv(t, files)
	var logs strings.Builder
	var logMu sync.Mutex
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
	ctx := ctrl.LoggerInto(context.Background(), logger)

	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, apps)
	for i := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := canaryApp(&v1.GitOpsSpec{RepoURL: e.url(), Path: fmt.Sprintf("apps/app%d", i)}, rollback(now), checks(now.Add(-time.Minute), "ghcr.io/acme/web:v3")...)
			app.Name = fmt.Sprintf("app%d", i)
			_, err := e.writer.Write(ctx, app)
			errs <- err
		}()
	}
	person := t.TempDir()
	cmd := exec.Command("git", "clone", "-q", "-b", "main", e.srv.HTTPAddressWithCredentials()+"/acme/apps.git", person)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for i := range 3 {
		_ = os.WriteFile(filepath.Join(person, fmt.Sprintf("notes-%d.md", i)), []byte("x\n"), 0o644)
		for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", fmt.Sprintf("person %d", i)}} {
			c := exec.Command("git", args...)
			c.Dir, c.Env = person, append(os.Environ(), "GIT_AUTHOR_NAME=P", "GIT_AUTHOR_EMAIL=p@e", "GIT_COMMITTER_NAME=P", "GIT_COMMITTER_EMAIL=p@e")
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
		}
		for try := 0; ; try++ {
			c := exec.Command("git", "push", "-q", "origin", "HEAD:main")
			c.Dir = person
			if c.Run() == nil {
				break
			}
			if try > 50 {
				t.Fatal("person could not push")
			}
			c = exec.Command("git", "pull", "-q", "--rebase", "origin", "main")
			c.Dir, c.Env = person, append(os.Environ(), "GIT_COMMITTER_NAME=P", "GIT_COMMITTER_EMAIL=p@e")
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	log := e.log("main")
	// Outcomes waiting at once share commits (coalesce.go); each keeps its
	// own trailer block.
	bodies := e.git("log", "--format=%B", "origin/main")
	for i := range apps {
		if n := strings.Count(bodies, fmt.Sprintf("Canaryop-App: shop/app%d\n", i)); n != 1 {
			t.Fatalf("app%d recorded %d times: %v", i, n, log)
		}
		body := e.show(fmt.Sprintf("origin/main:apps/app%d/canaryapp.yaml", i))
		if !strings.Contains(body, "image: ghcr.io/acme/web:v2") || !strings.Contains(body, "- image: ghcr.io/acme/web:v3") {
			t.Fatalf("app%d manifest:\n%s", i, body)
		}
	}
	for i := range 3 {
		if countPrefix(log, fmt.Sprintf("person %d", i)) != 1 {
			t.Fatalf("person's commit %d lost: %v", i, log)
		}
	}
	if canaryop := len(log) - 1 - 3; canaryop < 1 || canaryop > apps {
		t.Fatalf("history %v", log)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "Wrote outcome to Git") {
		t.Fatalf("nothing logged: %s", logs.String())
	}
	noSecrets(t, logs.String())
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
