//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/test/e2e/stack"
)

// Versions with a profile in the suite's trafficsim (stack.TrafficsimProfiles):
// err20 and err20b answer 20% of requests with 500, err40 40%, slow takes
// 800ms (and errs like err20); all others take 20ms.
var (
	err20Image  = stack.Image("err20")
	err20bImage = stack.Image("err20b")
	err40Image  = stack.Image("err40")
	slowImage   = stack.Image("slow")
)

// realServiceSpec turns the demo manifest into a real service's: a pod
// template with a sidecar before the app container, env, resources and a
// readiness probe, and an analysis by metrics instead of prometheusQuery:
// the built-in request-duration (p99 at most 500ms) and the error ratio
// compared with the primary's (at most 50% above it).
func realServiceSpec(t *testing.T, m []byte) []byte {
	t.Helper()
	out := string(m)
	i := strings.Index(out, "  prometheusQuery:")
	j := strings.Index(out[i:], "\n")
	if i < 0 || j < 0 {
		t.Fatalf("no prometheusQuery line in the demo manifest:\n%s", out)
	}
	out = out[:i] + out[i+j+1:]
	out = strings.Replace(out, "  testReplicas: 1\n", `  testReplicas: 1
  containerName: server
  template:
    metadata:
      labels:
        team: shop
    spec:
      containers:
        - name: log-shipper
          image: fluent/fluent-bit:3.0
        - name: server
          image: set-by-canaryop
          env:
            - name: LOG_LEVEL
              value: info
          resources:
            requests: {cpu: 50m, memory: 32Mi}
          readinessProbe:
            httpGet: {path: /hello, port: 8088}
`, 1)
	out = strings.Replace(out, "    checkInterval: ", `    metrics:
      - name: request-duration
        interval: 15s
        thresholdRange: {max: "500"}
      - name: error-ratio
        interval: 15s
        query: |
          sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload="{{ .Workload }}",response_code=~"5.."}[{{ .Interval }}]))
          / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload="{{ .Workload }}"}[{{ .Interval }}]))
        compareToPrimary: {maxIncrease: "50%"}
    checkInterval: `, 1)
	return []byte(out)
}

// TestRealServiceMetrics: a service with its own pod template is judged by
// canary-scoped metrics against the real Prometheus: a canary with the
// primary's error rate passes compareToPrimary and is promoted; one twice
// as bad fails it; a slow one that errs no more than the primary is rolled
// back by request-duration. Each decision's metrics land in status and in
// the rollback commit.
func TestRealServiceMetrics(t *testing.T) {
	ctx, f, app := start(t, "e2e-metrics")
	m, err := stack.DemoManifest(env.Root, app.Name, app.Namespace, env.Get("PROM_URL"), f.Short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.SeedManifest(ctx, app, realServiceSpec(t, m), err20Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "stable at "+err20Image, stack.IsStable(err20Image)); err != nil {
		t.Fatal(err)
	}

	// Same error rate as the primary: promoted.
	if _, err := f.Release(ctx, app, err20bImage); err != nil {
		t.Fatal(err)
	}
	a := promote(ctx, t, f, app, err20bImage)
	passed := 0
	for _, c := range a.Status.Checks {
		if c.Image != err20bImage || c.Verdict != v1.CheckPass {
			continue
		}
		passed++
		if len(c.Metrics) != 2 || c.Metrics[1].PrimaryValue == "" {
			t.Errorf("a passing check does not record both metrics and the primary's value: %+v", c)
		}
	}
	if passed == 0 {
		t.Errorf("no passing check of %s: %+v", err20bImage, a.Status.Checks)
	}

	rolledBackBy(ctx, t, f, app, err40Image, err20bImage, "error-ratio")
	rolledBackBy(ctx, t, f, app, slowImage, err20bImage, v1.MetricRequestDuration)
}

// rolledBackBy releases image and waits until it is rolled back to stable
// because metric (alone) failed, as status and the rollback commit say.
func rolledBackBy(ctx context.Context, t *testing.T, f *stack.Flow, app stack.App, image, stable, metric string) {
	t.Helper()
	if _, err := f.Release(ctx, app, image); err != nil {
		t.Fatal(err)
	}
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, image+" rolled back and written back", func(a *v1.CanaryApp, w stack.Weights) bool {
		wb := a.Status.WriteBack
		return stack.HasWrittenBack(v1.OutcomeRolledBack, stable)(a, w) && wb.FailedImage == image
	})
	if err != nil {
		t.Fatal(err)
	}
	var last *v1.AnalysisCheck
	for i := range a.Status.Checks {
		if c := &a.Status.Checks[i]; c.Image == image && c.Verdict == v1.CheckFail {
			last = c
		}
	}
	if last == nil {
		t.Fatalf("no failing check of %s: %+v", image, a.Status.Checks)
	}
	var failed []string
	for _, mc := range last.Metrics {
		if mc.Verdict == v1.CheckFail {
			failed = append(failed, mc.Name)
		}
	}
	if len(failed) != 1 || failed[0] != metric {
		t.Errorf("%s failed on %v, want %s alone: %+v", image, failed, metric, last.Metrics)
	}
	if err := f.RefreshAfterWriteBack(ctx, app); err != nil {
		t.Fatal(err)
	}
	commits, err := f.Repo.Log(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if commits[0].SHA != a.Status.WriteBack.Commit {
		t.Fatalf("newest commit %s, want the rollback %s", commits[0].Short(), a.Status.WriteBack.Commit)
	}
	if body := commits[0].Body; !strings.Contains(body, "Metric "+metric) || !strings.Contains(body, "Metrics:") {
		t.Errorf("the rollback commit does not show the metrics:\n%s", body)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "stable at "+stable+" after Git reverted", stack.IsStable(stable)); err != nil {
		t.Fatal(err)
	}
}
