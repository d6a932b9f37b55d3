package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/traffic"
)

// installApplicationCRD installs a minimal argoproj.io Application CRD (the
// operator reads Applications as unstructured objects; only the fields it
// reads matter) once per API server.
func installApplicationCRD(t *testing.T, g *WithT) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "applications.argoproj.io"},
		"spec": map[string]any{
			"group": "argoproj.io", "scope": "Namespaced",
			"names": map[string]any{"plural": "applications", "singular": "application", "kind": "Application", "listKind": "ApplicationList"},
			"versions": []any{map[string]any{"name": "v1alpha1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	if err := env.Client.Create(context.Background(), crd); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	g.Eventually(func() error {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "ApplicationList"})
		return env.Client.List(context.Background(), l)
	}, timeout, poll).Should(Succeed())
}

// teamBApplication is the admin's Argo CD Application that syncs team B's
// folder into team B's namespace, with the status Argo CD reports.
func teamBApplication(argoNS, teamB string, repo *gitRepo) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"source":      map[string]any{"repoURL": repo.url(), "targetRevision": "main", "path": "apps/canaryapp-sample"},
			"destination": map[string]any{"namespace": teamB},
		},
		"status": map[string]any{"resources": []any{
			map[string]any{"group": "canary.atze.io", "kind": "CanaryApp", "version": "v1", "namespace": teamB, "name": appName},
		}},
	}}
	u.SetGroupVersionKind(argocd.ApplicationGVK)
	u.SetNamespace(argoNS)
	u.SetName("team-b-sample")
	return u
}

// TestTenantCannotWriteAnotherTeamsGit performs the attack of review
// finding C1 against a real API server and Git server: an author in
// namespace evil names team B's repository and folder, explicitly or
// through a forged Argo CD tracking id, and canaries an image so that the
// operator commits into team B's manifest with the admin's token. The
// in-cluster rollback happens, the write-back is refused before anything is
// fetched, and Git never changes; team B's own app still writes back, and a
// forged status.writeBack of team B's app is not written either.
func TestTenantCannotWriteAnotherTeamsGit(t *testing.T) {
	g := NewWithT(t)
	installApplicationCRD(t, g)
	repo := newGitRepo(t)
	prom := newFakeProm(t)
	argoNS := env.NewNamespace(t)
	credsNS := env.NewNamespace(t)
	teamB := env.NewNamespace(t)
	g.Expect(env.Client.Create(context.Background(), scopedCredentialSecret(credsNS, repo, teamB))).To(Succeed())
	g.Expect(env.Client.Create(context.Background(), teamBApplication(argoNS, teamB, repo))).To(Succeed())
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := gitops.New(gitops.Options{Cache: cache, Credentials: credentials.New(env.Client, credsNS), Discoverer: argocd.New(env.Client, argoNS)})
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, w)
	repo.fetch()
	tip := repo.git("rev-parse", "origin/main")

	attacks := map[string]func(*v1.CanaryApp){
		"explicit path": func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/canaryapp-sample"}
		},
		"forged tracking id": func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{}
			a.Annotations = map[string]string{argocd.TrackingAnnotation: "team-b-sample:canary.atze.io/CanaryApp:" + a.Namespace + "/" + appName}
		},
		"forged instance label": func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{}
			a.Labels = map[string]string{argocd.InstanceLabel: "team-b-sample"}
		},
	}
	for name, mutate := range attacks {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			prom.set("good")
			ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) { mutate(a); holdAtFirstStep(a) })
			setImage(g, app, "ghcr.io/attacker/backdoor:1")
			g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
			prom.set("bad")
			g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
				WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)),
				haveCondition(v1.ConditionWriteBack, metav1.ConditionFalse, v1.ReasonWriteBackNotPermitted),
				haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonWriteBackNotPermitted),
			))
			g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)), "the in-cluster rollback still happens")
			g.Consistently(func() string {
				repo.fetch()
				return repo.git("rev-parse", "origin/main") + repo.git("for-each-ref", "refs/remotes/origin/canaryop")
			}, 5*time.Second, 500*time.Millisecond).Should(Equal(tip), "team B's repository is untouched")
			g.Expect(cache.Path(repo.url())).NotTo(BeADirectory(), "permission before contact: nothing was fetched")
			g.Expect(toJSON(get(g, app).Status)).NotTo(ContainSubstring(plantedToken))
		})
	}

	// The positive control: team B's own app, proven by its Application,
	// writes its rollback back.
	prom.set("good")
	_, app := stableAppIn(t, g, teamB, prom.URL, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{}
		a.Labels = map[string]string{argocd.InstanceLabel: "team-b-sample"}
		holdAtFirstStep(a)
	})
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, teamB, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	g.Eventually(func(g Gomega) *v1.WriteBackStatus { return get(g, app).Status.WriteBack }, timeout, poll).Should(
		WithTransform(func(wb *v1.WriteBackStatus) bool { return wb != nil && !wb.Pending && wb.Commit != "" }, BeTrue()))
	repo.fetch()
	g.Expect(repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")).To(ContainSubstring(image("v3")))
	tip = repo.git("rev-parse", "origin/main")

	// A forged outcome in team B's status (finding M2: whoever can write
	// canaryapps/status) names an image the primary does not run.
	cur := get(g, app)
	base := cur.DeepCopy()
	cur.Status.WriteBack = &v1.WriteBackStatus{Outcome: v1.OutcomePromoted, Image: "ghcr.io/attacker/backdoor:1", PreviousImage: image("v1"),
		DecidedAt: metav1.Now(), Pending: true}
	g.Expect(env.Client.Status().Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionWriteBack, metav1.ConditionFalse, v1.ReasonUnverifiedOutcome))
	g.Consistently(func() string { repo.fetch(); return repo.git("rev-parse", "origin/main") }, 3*time.Second, 500*time.Millisecond).Should(Equal(tip))
}

// stableAppIn is stableApp in a given namespace.
func stableAppIn(t *testing.T, g *WithT, ns, promURL string, mutate func(*v1.CanaryApp)) (string, *v1.CanaryApp) {
	t.Helper()
	kubelet(t, ns, nil)
	app := sample(ns, promURL)
	if mutate != nil {
		mutate(app)
	}
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable))
	return ns, app
}

// TestPrometheusURLOutsideAllowList performs the SSRF of review finding H2:
// an author points prometheusURL at a server the admin did not allow (here
// an httptest server standing in for an internal endpoint). The operator
// makes no request to it; the canary holds at its weight, never promotes,
// and the Analysis condition says why.
func TestPrometheusURLOutsideAllowList(t *testing.T) {
	g := NewWithT(t)
	allowed := newFakeProm(t)
	internal := newFakeProm(t)
	list, err := metrics.ParseAllowList(allowed.URL + "/")
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, nil, func(r *controllers.CanaryAppReconciler) {
		r.Metrics = metrics.NewPrometheus(metrics.WithAllowList(list))
	})
	ns, app := stableApp(t, g, allowed.URL, nil, nil)
	cur := get(g, app)
	base := cur.DeepCopy()
	cur.Spec.Image = image("v2")
	cur.Spec.PrometheusURL = internal.URL + "/admin"
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionAnalysis, metav1.ConditionUnknown, v1.ReasonPrometheusURLNotAllowed))
	g.Consistently(func(g Gomega) int32 { return get(g, app).Status.CanaryWeight }, 4*time.Second, 200*time.Millisecond).Should(Equal(int32(25)),
		"the canary holds at its first weight (interval 1s): a refused query never passes")
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(25)))
	g.Expect(get(g, app).Status.StableImage).To(Equal(image("v1")))
	g.Expect(internal.queries.Load()).To(BeZero(), "no request reached the server outside the allow-list")
}

// TestRoutesOutsideThePolicyAreRefused performs the route hijack of review
// finding H3: an author lists another team's mesh host and a shared ingress
// gateway. Only what the admin's policy allows for the namespace reaches a
// VirtualService; the app is Stalled with RouteNotAllowed while its canary
// still runs on its own host.
func TestRoutesOutsideThePolicyAreRefused(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	ns := env.NewNamespace(t)
	policy, err := routepolicy.Parse("istio-system/public-gateway=*.{namespace}.example.com@" + ns)
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, nil, func(r *controllers.CanaryAppReconciler) {
		r.Router = traffic.NewIstio(r.Client, traffic.WithRoutePolicy(policy))
	})
	_, app := stableAppIn(t, g, ns, prom.URL, func(a *v1.CanaryApp) {
		a.Spec.Gateways = []string{"istio-system/public-gateway", "istio-system/admin-gateway"}
		a.Spec.Hosts = []string{"web." + ns + ".example.com", "payments.team-b.svc.cluster.local", "sso.example.com"}
	})
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRouteNotAllowed))
	msg := condition(get(g, app), v1.ConditionStalled).Message
	g.Expect(msg).To(And(ContainSubstring("payments.team-b.svc.cluster.local"), ContainSubstring("admin-gateway")))

	mesh := &istionetworking.VirtualService{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: appName}, mesh)).To(Succeed())
	g.Expect(mesh.Spec.Hosts).To(Equal([]string{appName}), "the mesh VirtualService holds the own Service only")
	g.Expect(mesh.Spec.Gateways).To(BeEmpty())
	gw := &istionetworking.VirtualService{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: appName + "-gateways"}, gw)).To(Succeed())
	g.Expect(gw.Spec.Gateways).To(Equal([]string{"istio-system/public-gateway"}))
	g.Expect(gw.Spec.Hosts).To(ConsistOf(appName, "web."+ns+".example.com"))

	// The canary still shifts traffic on what is allowed.
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(BeNumerically(">", 0))
}
