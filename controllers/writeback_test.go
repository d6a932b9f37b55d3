package controllers_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/internal/testenv"
	"github.com/atzedevries/canaryop/internal/testgit"
)

const plantedToken = "ghp_PLANTEDcontrollerTOKEN8642"

// gitRepo is a real Git server over smart HTTP with basic auth, seeded with
// the demo app folder from examples/gitops.
type gitRepo struct {
	t    testing.TB
	srv  *gittestserver.GitServer
	work string
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	log.SetOutput(io.Discard) // the test server logs every request
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	srv.Auth("canaryop", plantedToken).AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.StopHTTP(); _ = os.RemoveAll(srv.Root()) })
	r := &gitRepo{t: t, srv: srv, work: t.TempDir()}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "examples", "gitops", "canaryapp-sample")
	dst := filepath.Join(r.work, "apps", "canaryapp-sample")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// Argo CD sets the namespace of documents without one; the test
		// namespaces have generated names.
		b = bytes.Replace(b, []byte("  namespace: default\n"), nil, 1)
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.git("init", "-q", "-b", "main")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "seed the demo app")
	r.git("remote", "add", "origin", srv.HTTPAddressWithCredentials()+"/team/apps.git")
	r.git("push", "-q", "origin", "main")
	return r
}

func (r *gitRepo) url() string { return r.srv.HTTPAddress() + "/team/apps.git" }

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	return testgit.Run(r.t, r.work, args...)
}

func (r *gitRepo) fetch() { r.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*") }

// gitWriter builds the production writer, reading the credential Secret
// from the API server like the manager does.
func gitWriter(t testing.TB, repo *gitRepo) gitops.Writer {
	t.Helper()
	ns := env.NewNamespace(t)
	if err := env.Client.Create(context.Background(), credentialSecret(ns, repo)); err != nil {
		t.Fatal(err)
	}
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := gitops.New(gitops.Options{Cache: cache, Credentials: credentials.New(env.Client, ns)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// credentialSecret is the platform admin's Secret covering the test repo,
// for apps in every test namespace.
func credentialSecret(ns string, repo *gitRepo) *corev1.Secret {
	return scopedCredentialSecret(ns, repo, "test-*")
}

// scopedCredentialSecret lets only apps in the namespaces globs use it.
func scopedCredentialSecret(ns string, repo *gitRepo, namespaces string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-repos", Labels: map[string]string{credentials.LabelKey: "true"}},
		StringData: map[string]string{"url": repo.srv.HTTPAddress() + "/team/", "username": "canaryop", "password": plantedToken, "namespaces": namespaces},
	}
}

func TestWriteBackRollbackAndPromotion(t *testing.T) {
	g := NewWithT(t)
	logs := captureLogs(t)
	repo := newGitRepo(t)
	prom := newFakeProm(t)
	startManager(t, gitWriter(t, repo))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/canaryapp-sample"}
	})

	// v2 is set in the cluster only (kubectl patch, as in the original demo):
	// promotion makes Git hold it.
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) *v1.WriteBackStatus { return get(g, app).Status.WriteBack }, timeout, poll).Should(And(
		Not(BeNil()),
		WithTransform(func(wb *v1.WriteBackStatus) bool {
			return wb != nil && !wb.Pending && wb.Outcome == v1.OutcomePromoted && wb.Commit != ""
		}, BeTrue()),
	))
	promoted := get(g, app).Status.WriteBack.Commit
	repo.fetch()
	g.Expect(repo.git("rev-parse", "origin/main")).To(HavePrefix(promoted))
	g.Expect(repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")).To(ContainSubstring("image: " + image("v2")))
	g.Expect(repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")).To(ContainSubstring("# The demo app"), "comments survive the edit")

	// v3 fails: the cluster rolls back at once, then Git gets the reverted
	// image and the failure record in one commit.
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	g.Eventually(func(g Gomega) *v1.WriteBackStatus { return get(g, app).Status.WriteBack }, timeout, poll).Should(
		WithTransform(func(wb *v1.WriteBackStatus) bool {
			return wb != nil && !wb.Pending && wb.Outcome == v1.OutcomeRolledBack && wb.Commit != ""
		}, BeTrue()))
	final := get(g, app)
	g.Expect(final.Status.StableImage).To(Equal(image("v2")))
	g.Expect(final).To(haveCondition(v1.ConditionWriteBack, metav1.ConditionTrue, v1.ReasonWriteBackSucceeded))
	repo.fetch()
	manifest := repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")
	g.Expect(manifest).To(ContainSubstring("image: " + image("v2")))
	g.Expect(manifest).To(ContainSubstring("failedImages:"))
	g.Expect(manifest).To(ContainSubstring(image("v3")))
	subjects := repo.git("log", "--format=%s", "origin/main")
	g.Expect(strings.Count(subjects, "\n")).To(Equal(3), "seed, promotion, rollback: one commit each:\n%s", subjects)
	g.Expect(subjects).To(ContainSubstring("roll back"))

	// Re-reconciling never writes the same outcome twice.
	touch(g, app)
	g.Consistently(func() string { repo.fetch(); return repo.git("rev-parse", "origin/main") }, 3*time.Second, 500*time.Millisecond).
		Should(HavePrefix(final.Status.WriteBack.Commit))

	// The planted token appears nowhere a person or a tool can read.
	var events eventsv1.EventList
	g.Expect(env.Client.List(context.Background(), &events, client.InNamespace(ns))).To(Succeed())
	g.Expect(toJSON(events.Items)).NotTo(ContainSubstring(plantedToken))
	g.Expect(toJSON(get(g, app).Status)).NotTo(ContainSubstring(plantedToken))
	g.Expect(repo.git("log", "--format=%B", "origin/main")).NotTo(ContainSubstring(plantedToken))
	g.Expect(logs.String()).NotTo(BeEmpty())
	g.Expect(logs.String()).NotTo(ContainSubstring(plantedToken))
}

func TestWriteBackWithoutCredentials(t *testing.T) {
	g := NewWithT(t)
	repo := newGitRepo(t)
	prom := newFakeProm(t)
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := gitops.New(gitops.Options{Cache: cache, Credentials: credentials.New(env.Client, env.NewNamespace(t))})
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, w)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/canaryapp-sample"}
		holdAtFirstStep(a)
	})
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	// Git cannot be written, yet the in-cluster rollback happens and the
	// outcome stays pending with a reason a person can act on.
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionWriteBack, metav1.ConditionFalse, v1.ReasonNoCredentials),
	))
	wb := get(g, app).Status.WriteBack
	g.Expect(wb.Pending).To(BeTrue())
	g.Expect(wb.Error).To(ContainSubstring("credentials"))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
}

// captureLogs sends the controller's logs to a buffer for the test.
func captureLogs(t testing.TB) *syncBuffer {
	b := &syncBuffer{}
	logSink.set(b)
	t.Cleanup(func() { logSink.set(nil) })
	return b
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
