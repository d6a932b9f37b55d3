package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/workload"
)

func getHPA(ns, name string) *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, h); err != nil {
		return nil
	}
	return h
}

func replicas(g Gomega, ns, name string) int32 {
	d := deployment(g, ns, name)
	g.Expect(d).NotTo(BeNil())
	return *d.Spec.Replicas
}

// scaleAsTheHPA sets a Deployment's replicas through its scale
// subresource, as the HPA controller (which envtest does not run) does.
func scaleAsTheHPA(g Gomega, ns, name string, n int32) {
	d := deployment(g, ns, name)
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}}
	g.Expect(env.Client.SubResource("scale").Update(context.Background(), d, client.WithSubResourceBody(scale))).To(Succeed())
}

func setSpec(g Gomega, app *v1.CanaryApp, mutate func(*v1.CanaryApp)) {
	cur := get(g, app)
	base := cur.DeepCopy()
	mutate(cur)
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
}

// TestAutoscaledPrimaryIsNeverReset: once an app has spec.autoscaling, the
// operator owns an HPA per track and never sets spec.replicas again: not
// when autoscaling is switched on (the value stays until the HPA scales),
// not on later reconciles, not through a canary and its promotion.
func TestAutoscaledPrimaryIsNeverReset(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, nil)
	g.Expect(replicas(g, ns, appName)).To(Equal(int32(2)))

	setSpec(g, app, func(a *v1.CanaryApp) {
		a.Spec.Autoscaling = &v1.AutoscalingSpec{MinReplicas: ptr(int32(2)), MaxReplicas: 10}
	})
	g.Eventually(func() *autoscalingv2.HorizontalPodAutoscaler { return getHPA(ns, appName) }, timeout, poll).ShouldNot(BeNil())
	h := getHPA(ns, appName)
	g.Expect(h.Spec.ScaleTargetRef.Name).To(Equal(appName))
	g.Expect(*h.Spec.MinReplicas).To(Equal(int32(2)))
	g.Expect(h.Spec.MaxReplicas).To(Equal(int32(10)))
	g.Eventually(func() bool { return workload.OwnsReplicas(deployment(g, ns, appName), apply.FieldManager) }, timeout, poll).Should(BeFalse())
	g.Expect(replicas(g, ns, appName)).To(Equal(int32(2)), "switching autoscaling on keeps the replicas")

	scaleAsTheHPA(g, ns, appName, 5)
	touch(g, app)
	g.Consistently(func() int32 { return replicas(g, ns, appName) }, 2*time.Second, poll).Should(Equal(int32(5)))

	setImage(g, app, image("v2"))
	g.Eventually(func() *autoscalingv2.HorizontalPodAutoscaler { return getHPA(ns, canaryName) }, timeout, poll).ShouldNot(BeNil())
	ch := getHPA(ns, canaryName)
	g.Expect(*ch.Spec.MinReplicas).To(Equal(int32(1)), "the canary's HPA starts at testReplicas")
	g.Expect(ch.Spec.ScaleTargetRef.Name).To(Equal(canaryName))
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	g.Expect(replicas(g, ns, appName)).To(Equal(int32(5)), "a promotion keeps the HPA's replicas")
	g.Eventually(func() *autoscalingv2.HorizontalPodAutoscaler { return getHPA(ns, canaryName) }, timeout, poll).Should(BeNil())

	// Autoscaling off: the operator owns replicas again.
	setSpec(g, app, func(a *v1.CanaryApp) { a.Spec.Autoscaling = nil })
	g.Eventually(func() *autoscalingv2.HorizontalPodAutoscaler { return getHPA(ns, appName) }, timeout, poll).Should(BeNil())
	g.Eventually(func() int32 { return replicas(g, ns, appName) }, timeout, poll).Should(Equal(int32(2)))
}

// TestDisruptionBudget: spec.disruptionBudget gives the primary's pods a
// PodDisruptionBudget; removing it removes the budget.
func TestDisruptionBudget(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	min1 := intstr.FromInt32(1)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.DisruptionBudget = &v1.DisruptionBudgetSpec{MinAvailable: &min1}
	})
	pdb := &policyv1.PodDisruptionBudget{}
	key := types.NamespacedName{Namespace: ns, Name: appName}
	g.Eventually(func() error { return env.Client.Get(context.Background(), key, pdb) }, timeout, poll).Should(Succeed())
	g.Expect(pdb.Spec.MinAvailable.IntValue()).To(Equal(1))
	g.Expect(pdb.Spec.Selector.MatchLabels).To(Equal(map[string]string{workload.LabelApp: appName, workload.LabelTrack: "primary"}))
	g.Expect(metav1.IsControlledBy(pdb, get(g, app))).To(BeTrue())

	setSpec(g, app, func(a *v1.CanaryApp) { a.Spec.DisruptionBudget = nil })
	g.Eventually(func() error { return env.Client.Get(context.Background(), key, &policyv1.PodDisruptionBudget{}) }, timeout, poll).ShouldNot(Succeed())
}

// TestAutoscalingValidation: bounds the API server refuses readably.
func TestAutoscalingValidation(t *testing.T) {
	ns := env.NewNamespace(t)
	for _, tc := range []struct {
		name   string
		mutate func(*v1.CanaryApp)
		want   string
	}{
		{"min above max", func(a *v1.CanaryApp) {
			a.Spec.Autoscaling = &v1.AutoscalingSpec{MinReplicas: ptr(int32(5)), MaxReplicas: 2}
		}, "autoscaling.minReplicas must not be above autoscaling.maxReplicas"},
		{"budget with both", func(a *v1.CanaryApp) {
			one := intstr.FromInt32(1)
			a.Spec.DisruptionBudget = &v1.DisruptionBudgetSpec{MinAvailable: &one, MaxUnavailable: &one}
		}, "disruptionBudget needs exactly one of minAvailable and maxUnavailable"},
		{"empty budget", func(a *v1.CanaryApp) { a.Spec.DisruptionBudget = &v1.DisruptionBudgetSpec{} }, "disruptionBudget needs exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			tc.mutate(app)
			err := env.Client.Create(context.Background(), app)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
}
