package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/traffic/routers"
)

// BenchmarkConcurrentCanariesByRouter is BenchmarkConcurrentCanaries on
// each traffic router, through the registry as cmd builds them (both
// routers enabled): a new image on N apps at once until every one is
// promoted; wall time per round, API writes and GETs per canary.
//
//	go test ./controllers -run '^$' -bench ConcurrentCanariesByRouter -benchtime 1x -count 3
func BenchmarkConcurrentCanariesByRouter(b *testing.B) {
	for _, provider := range []v1.TrafficProvider{v1.TrafficIstio, v1.TrafficGatewayAPI} {
		for _, n := range []int{10, 50} {
			b.Run(fmt.Sprintf("router=%s/apps=%d", provider, n), func(b *testing.B) {
				benchmarkCanaryRound(b, provider, n)
			})
		}
	}
}

func benchmarkCanaryRound(b *testing.B, provider v1.TrafficProvider, n int) {
	g := NewWithT(b)
	prom := newFakeProm(b)
	var writes atomic.Int64
	requests := &requestCounter{}
	requests.reset()
	startManagerWith(b, requests.wrap(managerConfig()), nil, func(r *controllers.CanaryAppReconciler) {
		r.Client = writeCounter{Client: r.Client, n: &writes}
		r.Router = traffic.NewRouters(traffic.Deps{Client: r.Client, APIReader: r.APIReader}, routers.All())
	})
	var total time.Duration
	var totalWrites, totalGETs int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := env.NewNamespace(b)
		kubelet(b, ns, nil)
		apps := make([]*v1.CanaryApp, n)
		for j := range apps {
			apps[j] = sample(ns, prom.URL)
			apps[j].Name = fmt.Sprintf("app-%03d", j)
			apps[j].Spec.Traffic = &v1.TrafficSpec{Provider: provider}
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
		totalWrites += writes.Load()
		totalGETs += requests.get(http.MethodGet)
		b.StopTimer()
		retire(b, ns)
		deleteServices(b, ns)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/round")
	b.ReportMetric(float64(totalWrites)/float64(n*b.N), "writes/canary")
	b.ReportMetric(float64(totalGETs)/float64(n*b.N), "GETs/canary")
}

// deleteServices deletes the Services of a finished round: envtest runs no
// garbage collector, and its Service range has only 250 cluster IPs, which
// the gatewayapi router's three Services per app would use up.
func deleteServices(b *testing.B, ns string) {
	b.Helper()
	var list corev1.ServiceList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	for i := range list.Items {
		if err := env.Client.Delete(context.Background(), &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			b.Fatal(err)
		}
	}
}
