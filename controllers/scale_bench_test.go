package controllers_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/traffic"
)

// writeCounter counts the API writes the reconciler makes.
type writeCounter struct {
	client.Client
	n *atomic.Int64
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
			startManager(b, nil, func(r *controllers.CanaryAppReconciler) {
				r.Client = writeCounter{Client: r.Client, n: &writes}
				r.Router = traffic.NewIstio(r.Client)
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
				b.StartTimer()
				start := time.Now()
				for _, a := range apps {
					setImage(g, a, image("v2"))
				}
				for _, a := range apps {
					g.Eventually(func(g Gomega) string { return get(g, a).Status.StableImage }, 4*timeout, 50*time.Millisecond).Should(Equal(image("v2")))
				}
				total += time.Since(start)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/round")
			b.ReportMetric(float64(writes.Load())/float64(n), "writes/canary")
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
		})
	}
}
