package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atzedevries/canaryop/internal/testhostile"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
)

func patchFrom(base *v1.CanaryApp) client.Patch { return client.MergeFrom(base) }

// hugeProm answers every query with an endless JSON body.
func hugeProm(t *testing.T) string {
	t.Helper()
	chunk := []byte(strings.Repeat(" ", 64<<10))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[`)
		for i := 0; i < 1600 && r.Context().Err() == nil; i++ { // 100 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHostileAppsDoNotDelayAnHonestRollback is review finding H4: hostile
// tenants point their analysis at a Prometheus that never answers (with the
// longest check interval, so the longest deadline they can ask for), at one
// that streams 100 MiB, and keep an alias bomb in the folder their rollback
// is written to. Meanwhile another team's bad canary must still roll back
// within a few check intervals, and the operator stays up.
func TestHostileAppsDoNotDelayAnHonestRollback(t *testing.T) {
	g := NewWithT(t)
	repo := newGitRepo(t)
	bombDir := filepath.Join(repo.work, "apps", "bomb")
	g.Expect(os.MkdirAll(bombDir, 0o755)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(bombDir, "kustomization.yaml"), []byte("resources: [canaryapp.yaml]\n"), 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(bombDir, "canaryapp.yaml"), []byte(testhostile.AliasBomb(appName, image("v3"))), 0o644)).To(Succeed())
	repo.git("add", "-A")
	repo.git("commit", "-q", "-m", "a hostile team's folder")
	repo.git("push", "-q", "origin", "main")
	credsNS := env.NewNamespace(t)
	g.Expect(env.Client.Create(context.Background(), credentialSecret(credsNS, repo))).To(Succeed())
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := gitops.New(gitops.Options{Cache: cache, Credentials: credentials.New(env.Client, credsNS)})
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, w)

	honestProm := newFakeProm(t)
	slow := func(url string) func(*v1.CanaryApp) {
		return func(a *v1.CanaryApp) {
			a.Spec.PrometheusURL = url
			// Each check may take the longest deadline there is (30s)
			// and one is due every 30s: a worker per app, all the time.
			a.Spec.Analysis.CheckInterval = &metav1.Duration{Duration: 30 * time.Second}
			a.Spec.Analysis.Interval = &metav1.Duration{Duration: 30 * time.Second}
		}
	}
	var hostile []*v1.CanaryApp
	for _, mutate := range []func(*v1.CanaryApp){
		slow("http://" + testhostile.Tarpit(t)), slow("http://" + testhostile.Tarpit(t)), slow("http://" + testhostile.Tarpit(t)), slow(hugeProm(t)),
	} {
		// The hostile apps become stable on the honest Prometheus, then
		// turn to their own.
		_, app := stableApp(t, g, honestProm.URL, nil, nil)
		cur := get(g, app)
		base := cur.DeepCopy()
		mutate(cur)
		cur.Spec.Image = image("v2")
		g.Expect(env.Client.Patch(context.Background(), cur, patchFrom(base))).To(Succeed())
		hostile = append(hostile, app)
	}
	_, bomber := stableApp(t, g, honestProm.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/bomb"}
	})

	ns, honest := stableApp(t, g, honestProm.URL, nil, holdAtFirstStep)
	setImage(g, honest, image("v3"))
	setImage(g, bomber, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	bad := newFakeProm(t)
	bad.set("bad")
	start := time.Now()
	for _, app := range []*v1.CanaryApp{honest, bomber} {
		cur := get(g, app)
		base := cur.DeepCopy()
		cur.Spec.PrometheusURL = bad.URL
		g.Expect(env.Client.Patch(context.Background(), cur, patchFrom(base))).To(Succeed())
	}
	g.Eventually(func(g Gomega) v1.Phase { return get(g, honest).Status.Phase }, timeout, 50*time.Millisecond).Should(Equal(v1.PhaseFailed))
	t.Logf("the honest app rolled back %s after its Prometheus turned bad, next to 4 hostile analyses", time.Since(start).Round(10*time.Millisecond))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))

	// The bomb in the hostile folder is refused by the render's budget,
	// and the write-back stalls instead of retrying.
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, bomber) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionWriteBack, metav1.ConditionFalse, v1.ReasonWriteBackFailed),
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonWriteBackFailed),
	))
	g.Expect(get(g, bomber).Status.WriteBack.Error).NotTo(ContainSubstring("lol"), "nothing of the repository is echoed")

	// The hostile analyses end inconclusive, without their answers.
	for _, app := range hostile {
		g.Eventually(func(g Gomega) string {
			c := condition(get(g, app), v1.ConditionAnalysis)
			if c == nil {
				return ""
			}
			return string(c.Status) + "/" + c.Reason + ": " + c.Message
		}, 2*timeout, poll).Should(Or(HavePrefix("Unknown/CheckInconclusive: "), HavePrefix("Unknown/ResponseTooLarge: ")))
	}
}
