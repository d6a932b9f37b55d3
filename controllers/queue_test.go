package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/admission"
)

// progressingAtOnce samples how many apps of ns run a canary at the same
// time, until the test ends, and returns the most it saw.
func progressingAtOnce(t *testing.T, ns string) func() int32 {
	var most atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			var list v1.CanaryAppList
			if env.Client.List(ctx, &list, client.InNamespace(ns)) == nil {
				n := int32(0)
				for _, a := range list.Items {
					if a.Status.CanaryImage != "" {
						n++
					}
				}
				if n > most.Load() {
					most.Store(n)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return most.Load
}

// TestProgressingCapQueuesInOrder: with at most one canary per namespace,
// new images of b and c wait (phase Queued, Progressing=False/Queued) in
// the order they came, while a's canary runs and is rolled back without
// waiting for anything; then b runs and is promoted, then c.
func TestProgressingCapQueuesInOrder(t *testing.T) {
	g := NewWithT(t)
	startManagerOpts(t, managerConfig(), controllers.Options{Progressing: admission.Limits{PerNamespace: 1}})
	ns := env.NewNamespace(t)
	kubelet(t, ns, nil)
	proms := map[string]*fakeProm{}
	apps := map[string]*v1.CanaryApp{}
	for _, name := range []string{"a", "b", "c"} {
		proms[name] = newFakeProm(t)
		app := sample(ns, proms[name].URL)
		app.Name = name
		app.Spec.PrometheusQuery = fmt.Sprintf(`up{app=%q} > 2`, name)
		g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
		apps[name] = app
	}
	for _, app := range apps {
		g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable))
	}
	most := progressingAtOnce(t, ns)

	setImage(g, apps["a"], image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, "a") }, timeout, poll).Should(Equal(int32(25)))
	setImage(g, apps["b"], image("v2"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, apps["b"]) }, timeout, poll).Should(And(
		WithTransform(phase, Equal(v1.PhaseQueued)),
		haveCondition(v1.ConditionProgressing, metav1.ConditionFalse, v1.ReasonQueued),
	))
	time.Sleep(10 * time.Millisecond) // queuedAt has a resolution of a second; the order falls back to names
	setImage(g, apps["c"], image("v2"))
	g.Eventually(func(g Gomega) v1.Phase { return phase(get(g, apps["c"])) }, timeout, poll).Should(Equal(v1.PhaseQueued))
	b, c := get(g, apps["b"]), get(g, apps["c"])
	g.Expect(b.Status.QueuedAt.Time).NotTo(BeTemporally(">", c.Status.QueuedAt.Time))
	g.Expect(condition(c, v1.ConditionProgressing).Message).To(ContainSubstring("1 of 1 canaries progressing in namespace " + ns))
	g.Expect(condition(c, v1.ConditionProgressing).Message).To(ContainSubstring("number 2 in line"))
	g.Expect(deployment(g, ns, "b-canary")).To(BeNil(), "no canary while queued")

	// a's canary fails: it is rolled back, and b (first in line) starts.
	proms["a"].set("bad")
	g.Eventually(func(g Gomega) v1.Phase { return phase(get(g, apps["a"])) }, timeout, poll).Should(Equal(v1.PhaseFailed))
	g.Eventually(func(g Gomega) string { return get(g, apps["b"]).Status.CanaryImage }, timeout, poll).Should(Equal(image("v2")))
	g.Expect(phase(get(g, apps["c"]))).To(Equal(v1.PhaseQueued))

	// b is promoted; then c runs and is promoted.
	g.Eventually(func(g Gomega) string { return get(g, apps["b"]).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, apps["c"]) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) string { return a.Status.StableImage }, Equal(image("v2"))),
		haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable),
	))
	g.Expect(get(g, apps["c"]).Status.QueuedAt).To(BeNil())
	g.Expect(most()).To(Equal(int32(1)), "never more than one canary in the namespace")
	g.Eventually(func() []string { return eventReasons(ns) }, timeout, poll).Should(ContainElement(v1.ReasonQueued))
}
