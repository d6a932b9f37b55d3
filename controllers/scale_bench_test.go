package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/traffic"
)

// writeCounter counts the API writes the reconciler makes: creates,
// patches (the managedFields ones too), updates, applies, deletes and
// status patches.
type writeCounter struct {
	client.Client
	n *atomic.Int64
}

func (c writeCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.n.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c writeCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.n.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c writeCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.n.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c writeCounter) Apply(ctx context.Context, obj k8sruntime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.n.Add(1)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c writeCounter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.n.Add(1)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c writeCounter) Status() client.SubResourceWriter {
	return statusCounter{SubResourceWriter: c.Client.Status(), n: c.n}
}

type statusCounter struct {
	client.SubResourceWriter
	n *atomic.Int64
}

func (s statusCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.n.Add(1)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// requestCounter counts the HTTP requests of a manager's clients by
// method: the reconciler's reads and writes, the informers' lists and
// watches, the events.
type requestCounter struct {
	mu       sync.Mutex
	byMethod map[string]int64
}

func (rc *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			rc.mu.Lock()
			rc.byMethod[req.Method]++
			rc.mu.Unlock()
			return rt.RoundTrip(req)
		})
	}
	return cfg
}

func (rc *requestCounter) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.byMethod = map[string]int64{}
}

func (rc *requestCounter) get(method string) int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.byMethod[method]
}

// retire deletes the CanaryApps of a finished benchmark round, so that the
// next round's manager does not reconcile them too (envtest runs no
// namespace controller: a deleted namespace keeps its objects).
func retire(b *testing.B, ns string) {
	b.Helper()
	if err := env.Client.DeleteAllOf(context.Background(), &v1.CanaryApp{}, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// BenchmarkConcurrentCanaries releases a new image on N apps at once and
// waits until every one is promoted: wall time per round, API writes per
// canary, and the heap of the test process (operator, clients, informers).
//
//	go test ./controllers -run '^$' -bench ConcurrentCanaries -benchtime 1x -count 3
func BenchmarkConcurrentCanaries(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			g := NewWithT(b)
			prom := newFakeProm(b)
			var writes atomic.Int64
			requests := &requestCounter{}
			requests.reset()
			startManagerWith(b, requests.wrap(managerConfig()), nil, func(r *controllers.CanaryAppReconciler) {
				r.Client = writeCounter{Client: r.Client, n: &writes}
				r.Router = traffic.NewIstio(r.Client, traffic.WithAPIReader(r.APIReader))
			})
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ns := env.NewNamespace(b)
				kubelet(b, ns, nil)
				apps := make([]*v1.CanaryApp, n)
				for j := range apps {
					apps[j] = sample(ns, prom.URL)
					apps[j].Name = fmt.Sprintf("app-%03d", j)
					g.Expect(env.Client.Create(context.Background(), apps[j])).To(Succeed())
				}
				for _, a := range apps {
					g.Eventually(func(g Gomega) v1.Phase { return get(g, a).Status.Phase }, 2*timeout, poll).Should(Equal(v1.PhaseStable))
				}
				writes.Store(0)
				requests.reset()
				b.StartTimer()
				start := time.Now()
				for _, a := range apps {
					setImage(g, a, image("v2"))
				}
				for _, a := range apps {
					g.Eventually(func(g Gomega) string { return get(g, a).Status.StableImage }, 4*timeout, 50*time.Millisecond).Should(Equal(image("v2")))
				}
				total += time.Since(start)
				b.StopTimer()
				retire(b, ns)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/round")
			b.ReportMetric(float64(writes.Load())/float64(n), "writes/canary")
			b.ReportMetric(float64(requests.get(http.MethodGet))/float64(n), "GETs/canary")
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
		})
	}
}

// BenchmarkReconcileTuning measures the operator's client rate limits and
// worker count against each other: 100 apps created at once until all are
// Ready (s/init), then a new image on all of them until all are promoted
// (s/round), for combinations of --max-concurrent-reconciles and
// --kube-api-qps/--kube-api-burst (qps=-1: no client-side limit, the
// default; qps=20: burst 30, cluster-api's default; qps=100: burst 200). envtest
// answers in well under a millisecond on the machine it shares with the
// operator, so the latency=10ms cases delay every request of the manager by
// 10ms, about what a write costs on a real cluster (network and etcd).
// Each case needs a process of its own (the apps of one case would be
// reconciled by the next one's manager):
//
//	for c in latency=0s/workers=4/qps=-1 latency=10ms/workers=16/qps=100; do
//		go test ./controllers -run '^$' -bench "ReconcileTuning/$c\$" -benchtime 1x
//	done
func BenchmarkReconcileTuning(b *testing.B) {
	const n = 100
	type limit struct {
		qps   float32
		burst int
	}
	unlimited, limited, clusterAPIDefault := limit{-1, 0}, limit{100, 200}, limit{20, 30}
	cases := []struct {
		latency time.Duration
		workers int
		limit   limit
	}{
		{0, 4, unlimited}, {0, 16, unlimited},
		{0, 4, limited}, {0, 16, limited},
		{0, 4, clusterAPIDefault}, {0, 16, clusterAPIDefault},
		{10 * time.Millisecond, 4, unlimited}, {10 * time.Millisecond, 16, unlimited},
		{10 * time.Millisecond, 4, limited}, {10 * time.Millisecond, 8, limited},
		{10 * time.Millisecond, 16, limited}, {10 * time.Millisecond, 32, limited},
	}
	for _, tc := range cases {
		b.Run(fmt.Sprintf("latency=%s/workers=%d/qps=%g", tc.latency, tc.workers, tc.limit.qps), func(b *testing.B) {
			g := NewWithT(b)
			prom := newFakeProm(b)
			var writes atomic.Int64
			cfg := managerConfig()
			cfg.QPS, cfg.Burst = tc.limit.qps, tc.limit.burst
			if tc.latency > 0 {
				cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
					return roundTripFunc(func(req *http.Request) (*http.Response, error) {
						time.Sleep(tc.latency)
						return rt.RoundTrip(req)
					})
				}
			}
			startManagerWith(b, cfg, nil, func(r *controllers.CanaryAppReconciler) {
				r.Client = writeCounter{Client: r.Client, n: &writes}
				r.Router = traffic.NewIstio(r.Client, traffic.WithAPIReader(r.APIReader))
				r.MaxConcurrentReconciles = tc.workers
			})
			var initTotal, roundTotal time.Duration
			for i := 0; i < b.N; i++ {
				ns := env.NewNamespace(b)
				kubelet(b, ns, nil)
				apps := make([]*v1.CanaryApp, n)
				start := time.Now()
				for j := range apps {
					apps[j] = sample(ns, prom.URL)
					apps[j].Name = fmt.Sprintf("app-%03d", j)
					g.Expect(env.Client.Create(context.Background(), apps[j])).To(Succeed())
				}
				for _, a := range apps {
					g.Eventually(func(g Gomega) v1.Phase { return get(g, a).Status.Phase }, 4*timeout, poll).Should(Equal(v1.PhaseStable))
				}
				initTotal += time.Since(start)
				writes.Store(0)
				start = time.Now()
				for _, a := range apps {
					setImage(g, a, image("v2"))
				}
				for _, a := range apps {
					g.Eventually(func(g Gomega) string { return get(g, a).Status.StableImage }, 4*timeout, 50*time.Millisecond).Should(Equal(image("v2")))
				}
				roundTotal += time.Since(start)
				retire(b, ns)
			}
			b.ReportMetric(initTotal.Seconds()/float64(b.N), "s/init")
			b.ReportMetric(roundTotal.Seconds()/float64(b.N), "s/round")
			b.ReportMetric(float64(writes.Load())/float64(n*b.N), "writes/canary")
		})
	}
}

// BenchmarkCacheMemory measures what the operator's informer caches hold:
// the heap the manager adds to the test process (after a GC) once apps
// CanaryApps are Ready next to others unrelated Deployments, each with a
// Service, of other teams (created and status-updated by other field
// managers, as on a shared cluster).
//
//	go test ./controllers -run '^$' -bench CacheMemory -benchtime 1x -count 3
func BenchmarkCacheMemory(b *testing.B) {
	const apps, others = 100, 1000
	g := NewWithT(b)
	ctx := context.Background()
	prom := newFakeProm(b)
	otherNS := env.NewNamespace(b)
	for i := range others {
		labels := map[string]string{"app": fmt.Sprintf("other-%04d", i)}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: otherNS, Name: labels["app"], Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(2)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "web", Image: "registry.example.com/web:1",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						Env:   []corev1.EnvVar{{Name: "MODE", Value: "production"}},
					}}},
				},
			},
		}
		g.Expect(env.Client.Create(ctx, d, client.FieldOwner("kubectl-client-side-apply"))).To(Succeed())
		base := d.DeepCopy()
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
		g.Expect(env.Client.Status().Patch(ctx, d, client.MergeFrom(base), client.FieldOwner("kube-controller-manager"))).To(Succeed())
		// Headless: envtest's Service range has room for 250 cluster IPs.
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: otherNS, Name: labels["app"], Labels: labels},
			Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
		g.Expect(env.Client.Create(ctx, s, client.FieldOwner("kubectl-client-side-apply"))).To(Succeed())
	}
	heap := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse) / (1 << 20)
	}
	var total float64
	for i := 0; i < b.N; i++ {
		ns := env.NewNamespace(b)
		kubelet(b, ns, nil)
		before := heap()
		m := startManager(b, nil)
		list := make([]*v1.CanaryApp, apps)
		for j := range list {
			list[j] = sample(ns, prom.URL)
			list[j].Name = fmt.Sprintf("app-%03d", j)
			g.Expect(env.Client.Create(ctx, list[j])).To(Succeed())
		}
		for _, a := range list {
			g.Eventually(func(g Gomega) v1.Phase { return get(g, a).Status.Phase }, 4*timeout, poll).Should(Equal(v1.PhaseStable))
		}
		total += heap() - before
		m.stop()
		retire(b, ns)
	}
	b.ReportMetric(total/float64(b.N), "MiB-manager")
}
