package controllers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/traffic/gatewayapi"
	"github.com/atzedevries/canaryop/internal/workload"
)

// direct runs the production reconciler on a manager's cache without its
// controller: the test calls Reconcile itself and counts the writes of each
// call.
type direct struct {
	r      *controllers.CanaryAppReconciler
	cache  client.Client
	writes atomic.Int64
}

func newDirect(t *testing.T) *direct {
	t.Helper()
	mgr, err := ctrl.NewManager(managerConfig(), ctrl.Options{
		Scheme:                 env.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	d := &direct{cache: mgr.GetClient()}
	d.r = controllers.New(mgr, controllers.Options{})
	d.r.Client = writeCounter{Client: d.r.Client, n: &d.writes}
	d.r.Router = traffic.NewIstio(d.r.Client, traffic.WithAPIReader(d.r.APIReader))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// reconcile waits until the cache shows what the API server holds of the
// app's objects, so that a write is never just the cache lagging behind the
// last one, then reconciles once and returns the writes it made.
func (d *direct) reconcile(g Gomega, app *v1.CanaryApp) int64 {
	g.Eventually(func(g Gomega) { d.expectCacheCurrent(g, app) }, timeout, 10*time.Millisecond).Should(Succeed())
	before := d.writes.Load()
	_, err := d.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)})
	g.Expect(err).NotTo(HaveOccurred())
	return d.writes.Load() - before
}

func (d *direct) expectCacheCurrent(g Gomega, app *v1.CanaryApp) {
	for _, obj := range []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: workload.PrimaryName(app)}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: workload.CanaryName(app)}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: workload.ServiceName(app)}},
		&istionetworking.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: traffic.VirtualServiceName(app)}},
		&istionetworking.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: traffic.DestinationRuleName(app)}},
		&gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: gatewayapi.RouteName(app)}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: workload.TrackServiceName(app, workload.TrackPrimary)}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: workload.TrackServiceName(app, workload.TrackCanary)}},
	} {
		key := types.NamespacedName{Namespace: app.Namespace, Name: obj.GetName()}
		live := obj.DeepCopyObject().(client.Object)
		liveErr := env.Client.Get(context.Background(), key, live)
		cached := obj.DeepCopyObject().(client.Object)
		cachedErr := d.cache.Get(context.Background(), key, cached)
		if apierrors.IsNotFound(liveErr) {
			g.Expect(apierrors.IsNotFound(cachedErr)).To(BeTrue(), "%T %s deleted but still cached", obj, key)
			continue
		}
		g.Expect(liveErr).NotTo(HaveOccurred())
		g.Expect(cachedErr).NotTo(HaveOccurred())
		g.Expect(cached.GetResourceVersion()).To(Equal(live.GetResourceVersion()), "%T %s", obj, key)
	}
}

// reconcileUntil reconciles until done holds, and returns the writes of
// each reconcile.
func (d *direct) reconcileUntil(t *testing.T, g *WithT, app *v1.CanaryApp, done func(*v1.CanaryApp) bool) []int64 {
	t.Helper()
	var writes []int64
	deadline := time.Now().Add(2 * timeout)
	for !done(get(g, app)) {
		if time.Now().After(deadline) {
			t.Fatalf("not done after %s: status %s", 2*timeout, toJSON(get(g, app).Status))
		}
		writes = append(writes, d.reconcile(g, app))
		time.Sleep(50 * time.Millisecond)
	}
	return writes
}

func stable(image string) func(*v1.CanaryApp) bool {
	return func(a *v1.CanaryApp) bool {
		c := condition(a, v1.ConditionReady)
		return a.Status.Phase == v1.PhaseStable && a.Status.StableImage == image && a.Status.CanaryImage == "" &&
			c != nil && c.Status == metav1.ConditionTrue
	}
}

// TestSteadyAppWritesNothing: once an app is Ready, reconciling it again
// writes nothing to the API server: no apply of its Service, Deployment,
// DestinationRule or VirtualService, no status patch.
func TestSteadyAppWritesNothing(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	d := newDirect(t)
	ns := env.NewNamespace(t)
	kubelet(t, ns, nil)
	app := sample(ns, prom.URL)
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())

	initial := d.reconcileUntil(t, g, app, stable(image("v1")))
	t.Logf("writes per reconcile until Ready: %v", initial)

	const n = 20
	var total int64
	for range n {
		total += d.reconcile(g, app)
	}
	g.Expect(total).To(BeZero(), "writes in %d reconciles of a steady app", n)
}

// TestCanaryStepsWriteAtMostThree: from a new image to its promotion, no
// reconcile writes more than three times (route weights, status, one
// Deployment), and the promoted app is steady again.
func TestCanaryStepsWriteAtMostThree(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	d := newDirect(t)
	ns := env.NewNamespace(t)
	kubelet(t, ns, nil)
	app := sample(ns, prom.URL)
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	d.reconcileUntil(t, g, app, stable(image("v1")))

	setImage(g, app, image("v2"))
	writes := d.reconcileUntil(t, g, app, func(a *v1.CanaryApp) bool {
		return stable(image("v2"))(a) && deployment(g, ns, canaryName) == nil
	})
	var total, most int64
	for _, w := range writes {
		total += w
		most = max(most, w)
	}
	t.Logf("%d reconciles, %d writes, per reconcile: %v", len(writes), total, writes)
	g.Expect(most).To(BeNumerically("<=", 3), "writes per reconcile: %v", writes)

	for range 5 {
		g.Expect(d.reconcile(g, app)).To(BeZero(), "a reconcile after the promotion wrote")
	}
}

// TestDriftIsRepaired: skipping unchanged objects does not leave a hand
// edit of an owned field in place: the edit's watch event reconciles the
// app, which applies its intent over it. A Deployment whose canaryop label
// was removed (so the label-selected cache no longer has it) is repaired
// too, and the app stays Ready.
func TestDriftIsRepaired(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, nil)
	ctx := context.Background()
	key := types.NamespacedName{Namespace: ns, Name: appName}

	edit := func(obj client.Object, change func()) {
		g.Expect(env.Client.Get(ctx, key, obj)).To(Succeed())
		change()
		g.Expect(env.Client.Update(ctx, obj, client.FieldOwner("kubectl-edit"))).To(Succeed())
	}
	for _, tc := range []struct {
		name     string
		drift    func()
		repaired func(g Gomega)
	}{
		{
			name: "primary replicas",
			drift: func() {
				d := &appsv1.Deployment{}
				edit(d, func() { d.Spec.Replicas = ptr(int32(5)) })
			},
			repaired: func(g Gomega) { g.Expect(*deployment(g, ns, appName).Spec.Replicas).To(Equal(int32(2))) },
		},
		{
			name: "primary image",
			drift: func() {
				d := &appsv1.Deployment{}
				edit(d, func() { d.Spec.Template.Spec.Containers[0].Image = "someone/else:1" })
			},
			repaired: func(g Gomega) { g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v1"))) },
		},
		{
			name: "Service selector",
			drift: func() {
				s := &corev1.Service{}
				edit(s, func() { s.Spec.Selector = map[string]string{"app": "someone-else"} })
			},
			repaired: func(g Gomega) {
				s := &corev1.Service{}
				g.Expect(env.Client.Get(ctx, key, s)).To(Succeed())
				g.Expect(s.Spec.Selector).To(Equal(map[string]string{workload.LabelApp: appName}))
			},
		},
		{
			name: "primary without the canaryop label",
			drift: func() {
				d := &appsv1.Deployment{}
				edit(d, func() { delete(d.Labels, workload.LabelManagedBy) })
			},
			repaired: func(g Gomega) {
				g.Expect(deployment(g, ns, appName).Labels).To(HaveKeyWithValue(workload.LabelManagedBy, workload.ManagedBy))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.drift()
			g.Eventually(tc.repaired, timeout, poll).Should(Succeed())
			g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
				haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable))
			g.Expect(get(g, app).Status.StableImage).To(Equal(image("v1")), fmt.Sprintf("after %s", tc.name))
		})
	}
}
