package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	appName    = "canaryapp-sample"
	canaryName = "canaryapp-sample-canary"
	// timeout is how long a test waits for the operator; generous, since
	// CI runs the envtest packages side by side on two cores.
	timeout = 60 * time.Second
	poll    = 100 * time.Millisecond
)

// stableApp creates the sample app and waits until v1 runs with all traffic.
// ready (nil: all) says which Deployments the stand-in kubelet makes available.
func stableApp(t *testing.T, g *WithT, promURL string, ready func(*appsv1.Deployment) bool, mutate func(*v1.CanaryApp)) (string, *v1.CanaryApp) {
	t.Helper()
	ns := env.NewNamespace(t)
	kubelet(t, ns, ready)
	app := sample(ns, promURL)
	if mutate != nil {
		mutate(app)
	}
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable),
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseStable)),
	))
	return ns, app
}

func TestPromotion(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, nil)

	primary := deployment(g, ns, appName)
	g.Expect(containerImage(primary)).To(Equal(image("v1")))
	g.Expect(*primary.Spec.Replicas).To(Equal(int32(2)))
	svc := &corev1.Service{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: appName}, svc)).To(Succeed())
	g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(8088)))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))

	setImage(g, app, image("v2"))
	seen := map[int32]bool{}
	g.Eventually(func(g Gomega) *v1.CanaryApp {
		seen[canaryWeight(g, ns, appName)] = true
		return get(g, app)
	}, timeout, 50*time.Millisecond).Should(And(
		WithTransform(func(a *v1.CanaryApp) string { return a.Status.StableImage }, Equal(image("v2"))),
		haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable),
	))
	g.Expect(seen).To(HaveKey(int32(25)), "the canary took traffic in steps")
	g.Expect(seen).To(HaveKey(int32(50)))
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v2")))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))

	final := get(g, app)
	g.Expect(final.Status.Checks).NotTo(BeEmpty())
	for _, c := range final.Status.Checks {
		g.Expect(c.Verdict).To(Equal(v1.CheckPass))
		g.Expect(c.Image).To(Equal(image("v2")))
	}
	g.Expect(final.Status.ObservedGeneration).To(Equal(final.Generation))
	g.Eventually(func() []string { return eventReasons(ns) }, timeout, poll).Should(ContainElements(v1.ReasonWaitingForCanary, v1.ReasonAnalysing, v1.ReasonPromoting, v1.ReasonPromoted))
}

func TestRollback(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, nil)

	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRolledBack),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonRolledBack),
		haveCondition(v1.ConditionAnalysis, metav1.ConditionFalse, v1.ReasonCheckFailed),
	))
	final := get(g, app)
	g.Expect(final.Status.StableImage).To(Equal(image("v1")))
	g.Expect(final.Status.FailedImages).To(HaveLen(1))
	g.Expect(final.Status.FailedImages[0].Image).To(Equal(image("v3")))
	g.Expect(final.Status.FailedImages[0].Reason).To(ContainSubstring(v1.ReasonAnalysisFailed))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v1")))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())

	// The failed image is never canaried again, even when Prometheus is
	// healthy and the object is touched.
	prom.set("good")
	touch(g, app)
	g.Consistently(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, 3*time.Second, poll).Should(BeNil())
	g.Expect(get(g, app).Status.Phase).To(Equal(v1.PhaseFailed))
	g.Eventually(func() []string { return eventReasons(ns) }, timeout, poll).Should(ContainElement(v1.ReasonRolledBack))

	// Another image goes on as usual.
	setImage(g, app, image("v4"))
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v4")))
}

func TestCanaryNeverReady(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, func(d *appsv1.Deployment) bool { return d.Name != canaryName }, func(a *v1.CanaryApp) {
		a.Spec.Analysis.CanaryReadyTimeout = &metav1.Duration{Duration: 2 * time.Second}
	})

	setImage(g, app, image("v2"))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).ShouldNot(BeNil())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)))
	final := get(g, app)
	g.Expect(final.Status.FailedImages[0].Reason).To(ContainSubstring(v1.ReasonCanaryNotReady))
	g.Expect(final.Status.Checks).To(BeEmpty(), "no analysis runs before the canary is available")
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
}

func TestCanaryProgressDeadlineExceeded(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, func(d *appsv1.Deployment) bool { return d.Name != canaryName }, nil)

	setImage(g, app, image("v2"))
	var canary *appsv1.Deployment
	g.Eventually(func() *appsv1.Deployment { canary = deployment(g, ns, canaryName); return canary }, timeout, poll).ShouldNot(BeNil())
	// What the Deployment controller reports when the pods never come up.
	base := canary.DeepCopy()
	canary.Status = appsv1.DeploymentStatus{ObservedGeneration: canary.Generation, Replicas: 1, UnavailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
			LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
	g.Expect(env.Client.Status().Patch(context.Background(), canary, client.MergeFrom(base))).To(Succeed())

	// Long before the 5m canaryReadyTimeout.
	g.Eventually(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, 10*time.Second, poll).Should(Equal(v1.PhaseFailed))
	g.Expect(get(g, app).Status.FailedImages[0].Reason).To(ContainSubstring("progress deadline"))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
}

func TestNewImageMidCanary(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.Analysis.Interval = &metav1.Duration{Duration: 3 * time.Second}
	})

	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	setImage(g, app, image("v3"))
	g.Eventually(func() string { return containerImage(deployment(g, ns, canaryName)) }, timeout, poll).Should(Equal(image("v3")))
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, 2*timeout, poll).Should(Equal(image("v3")))
	for _, c := range get(g, app).Status.Checks {
		g.Expect(c.Image).To(Equal(image("v3")), "the analysis restarted with the newest image")
	}
	g.Expect(get(g, app).Status.FailedImages).To(BeEmpty())
}

func TestRestartMidCanary(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	first := startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.Analysis.Interval = &metav1.Duration{Duration: 2 * time.Second}
	})

	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	first.stop()
	mid := get(g, app)
	g.Expect(mid.Status.CanaryImage).To(Equal(image("v2")))
	startedAt := mid.Status.CanaryStartedAt

	startManager(t, nil)
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	final := get(g, app)
	g.Expect(final.Status.Checks[0].Time.Time).To(BeTemporally("<", startedAt.Add(5*time.Second)),
		"the new manager resumed the canary the first one started instead of starting over")
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
}

func TestRestartMidRollback(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	first := startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, holdAtFirstStep)
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	first.stop()
	prom.set("bad")
	startManager(t, nil)
	g.Eventually(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, timeout, poll).Should(Equal(v1.PhaseFailed))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
}

func TestForeignObjectNotAdopted(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns := env.NewNamespace(t)
	labels := map[string]string{"app": "someone-else"}
	foreign := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "someone/else:1"}}},
			},
		},
	}
	g.Expect(env.Client.Create(context.Background(), foreign)).To(Succeed())
	rv := foreign.ResourceVersion

	app := sample(ns, prom.URL)
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonForeignObject),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonForeignObject),
	))
	g.Expect(condition(get(g, app), v1.ConditionStalled).Message).To(ContainSubstring("never adopts"))
	g.Consistently(func() string { return deployment(g, ns, appName).ResourceVersion }, 2*time.Second, poll).Should(Equal(rv))
	g.Expect(deployment(g, ns, appName).OwnerReferences).To(BeEmpty())
}

func TestValidationRejectsBadSpecs(t *testing.T) {
	ns := env.NewNamespace(t)
	cases := []struct {
		name   string
		mutate func(*v1.CanaryApp)
		want   string
	}{
		{"port 0", func(a *v1.CanaryApp) { a.Spec.ImageListenPort = 0 }, "imageListenPort"},
		{"port 70000", func(a *v1.CanaryApp) { a.Spec.ImageListenPort = 70000 }, "imageListenPort"},
		{"replicas 0", func(a *v1.CanaryApp) { a.Spec.Replicas = 0 }, "replicas"},
		{"test replicas 0", func(a *v1.CanaryApp) { a.Spec.TestReplicas = 0 }, "testReplicas"},
		{"bad image", func(a *v1.CanaryApp) { a.Spec.Image = "Not An Image!" }, "image must be a container image reference"},
		{"upper-case repository", func(a *v1.CanaryApp) { a.Spec.Image = "atzedevries/Server:v1" }, "image must be a container image reference"},
		{"empty query", func(a *v1.CanaryApp) { a.Spec.PrometheusQuery = "" }, "prometheusQuery"},
		{"ftp url", func(a *v1.CanaryApp) { a.Spec.PrometheusURL = "ftp://prom:9090" }, "prometheusURL must be an http:// or https:// URL"},
		{"url without host", func(a *v1.CanaryApp) { a.Spec.PrometheusURL = "http://" }, "prometheusURL must be an http:// or https:// URL"},
		{"weight 0", func(a *v1.CanaryApp) { a.Spec.Analysis.StepWeight = ptr(int32(0)) }, "stepWeight"},
		{"weight 101", func(a *v1.CanaryApp) { a.Spec.Analysis.StepWeight = ptr(int32(101)) }, "stepWeight"},
		{"promotion weight 0", func(a *v1.CanaryApp) { a.Spec.Analysis.PromotionWeight = ptr(int32(0)) }, "promotionWeight"},
		{"weights not increasing", func(a *v1.CanaryApp) {
			a.Spec.Analysis.StepWeight = nil
			a.Spec.Analysis.StepWeights = []int32{10, 30, 20}
		}, "stepWeights must be strictly increasing"},
		{"weights out of range", func(a *v1.CanaryApp) {
			a.Spec.Analysis.StepWeight = nil
			a.Spec.Analysis.StepWeights = []int32{10, 200}
		}, "stepWeights"},
		{"weights below promotion", func(a *v1.CanaryApp) {
			a.Spec.Analysis.StepWeight = nil
			a.Spec.Analysis.StepWeights = []int32{10, 20}
			a.Spec.Analysis.PromotionWeight = ptr(int32(50))
		}, "stepWeights must reach analysis.promotionWeight"},
		{"weight and weights", func(a *v1.CanaryApp) { a.Spec.Analysis.StepWeights = []int32{10, 50} }, "set either analysis.stepWeight or analysis.stepWeights"},
		{"interval too short", func(a *v1.CanaryApp) { a.Spec.Analysis.Interval = &metav1.Duration{Duration: time.Millisecond} }, "analysis.interval must be between 1s and 24h"},
		{"check interval too long", func(a *v1.CanaryApp) { a.Spec.Analysis.CheckInterval = &metav1.Duration{Duration: 2 * time.Hour} }, "analysis.checkInterval must be between 1s and 1h"},
		{"ready timeout", func(a *v1.CanaryApp) { a.Spec.Analysis.CanaryReadyTimeout = &metav1.Duration{Duration: 48 * time.Hour} }, "canaryReadyTimeout must be between 1s and 24h"},
		{"failure threshold", func(a *v1.CanaryApp) { a.Spec.Analysis.FailureThreshold = ptr(int32(0)) }, "failureThreshold"},
		{"query error policy", func(a *v1.CanaryApp) { a.Spec.Analysis.OnQueryError = "Ignore" }, "onQueryError"},
		{"name too long", func(a *v1.CanaryApp) { a.Name = strings.Repeat("a", 57) }, "metadata.name must be at most 56 characters"},
		{"name not a DNS-1035 label", func(a *v1.CanaryApp) { a.Name = "1app" }, "metadata.name must be a DNS-1035 label"},
		{"gateway name", func(a *v1.CanaryApp) { a.Spec.Gateways = []string{"Istio System/Ingress"} }, "gateways"},
		{"host", func(a *v1.CanaryApp) { a.Spec.Hosts = []string{"http://shop.example.com"} }, "hosts"},
		{"git url", func(a *v1.CanaryApp) { a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: "file:///etc"} }, "gitops.repoURL must be"},
		{"git path escapes", func(a *v1.CanaryApp) { a.Spec.GitOps = &v1.GitOpsSpec{Path: "apps/../../etc"} }, "gitops.path must be relative"},
		{"git url dot-segment", func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: "https://github.com/acme/team-a/../team-b/x.git"}
		}, "gitops.repoURL must be canonical"},
		{"git url percent-encoded", func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: "https://github.com/acme/team-a/%2e%2e/team-b/x.git"}
		}, "gitops.repoURL must be canonical"},
		{"git url empty segment", func(a *v1.CanaryApp) { a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: "https://github.com/acme//x.git"} }, "gitops.repoURL must be canonical"},
		{"git mode", func(a *v1.CanaryApp) { a.Spec.GitOps = &v1.GitOpsSpec{Rollback: "Email"} }, "rollback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			tc.mutate(app)
			err := env.Client.Create(context.Background(), app)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
	t.Run("the original sample applies as is", func(t *testing.T) {
		g := NewWithT(t)
		app := sample(ns, "http://prometheus.istio-system.svc:9090")
		app.Spec.Analysis = nil
		g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	})
	t.Run("registry with port and digest", func(t *testing.T) {
		g := NewWithT(t)
		app := sample(ns, "https://prom.example.com/prometheus")
		app.Name = "digest"
		app.Spec.Image = "registry.example.com:5000/team/app_x@sha256:" + strings.Repeat("a", 64)
		g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	})
}

func touch(g Gomega, app *v1.CanaryApp) {
	cur := get(g, app)
	base := cur.DeepCopy()
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations["test/touched"] = time.Now().Format(time.RFC3339Nano)
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
}

func eventReasons(ns string) []string {
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}
