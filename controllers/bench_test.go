package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// BenchmarkErrorToRollback measures the time from the moment Prometheus
// starts answering "bad" to the moment the VirtualService sends all traffic
// back to the primary. "default" uses the default 2s check interval; the
// "checks-at-steps" case checks only when the weight steps (checkInterval =
// interval = 10s), which is how the original operator behaved.
//
//	go test ./controllers -run '^$' -bench ErrorToRollback -benchtime 5x
func BenchmarkErrorToRollback(b *testing.B) {
	for _, bc := range []struct {
		name            string
		interval, check time.Duration
	}{
		{"default", 30 * time.Second, v1.DefaultCheckInterval},
		{"checks-at-steps", 10 * time.Second, 10 * time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := NewWithT(b)
			prom := newFakeProm(b)
			startManager(b, nil)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				prom.set("good")
				ns := env.NewNamespace(b)
				kubelet(b, ns, nil)
				app := sample(ns, prom.URL)
				app.Spec.Analysis.Interval = &metav1.Duration{Duration: bc.interval}
				app.Spec.Analysis.CheckInterval = &metav1.Duration{Duration: bc.check}
				g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
				g.Eventually(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, timeout, poll).Should(Equal(v1.PhaseStable))
				setImage(g, app, image("v3"))
				g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 20*time.Millisecond).Should(Equal(int32(25)))
				// The first check at a weight runs as soon as the weight is
				// set; errors that start before it would be seen at once.
				g.Eventually(func(g Gomega) bool {
					checks := get(g, app).Status.Checks
					return len(checks) > 0 && checks[len(checks)-1].Weight == 25
				}, timeout, 20*time.Millisecond).Should(BeTrue())
				// Errors become visible at a random point between checks.
				time.Sleep(time.Duration(i%5) * bc.check / 5)
				b.StartTimer()
				start := time.Now()
				prom.set("bad")
				g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 20*time.Millisecond).Should(Equal(int32(0)))
				total += time.Since(start)
				b.StopTimer()
				retire(b, ns)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/rollback")
		})
	}
}
