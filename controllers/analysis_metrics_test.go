package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
)

// scriptedProm answers each query with the value answer(query) returns:
// "" for an empty vector, "down" for an error, else one sample.
type scriptedProm struct {
	*httptest.Server
	mu      sync.Mutex
	answer  func(query string) string
	queries []string
}

func newScriptedProm(t *testing.T, answer func(string) string) *scriptedProm {
	p := &scriptedProm{answer: answer}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.FormValue("query")
		p.mu.Lock()
		p.queries = append(p.queries, q)
		a := p.answer(q)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch a {
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"error","errorType":"unavailable","error":"down"}`)
		case "":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		default:
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,%q]}]}}`, a)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *scriptedProm) set(answer func(string) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = answer
}

func (p *scriptedProm) seen(sub string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range p.queries {
		if strings.Contains(q, sub) {
			return true
		}
	}
	return false
}

// byWorkload answers built-in latency and error-rate queries per
// destination_workload.
func byWorkload(canaryP99, primaryP99, canaryErr, primaryErr string) func(string) string {
	return func(q string) string {
		canary := strings.Contains(q, `destination_workload="`+canaryName+`"`)
		switch {
		case strings.Contains(q, "istio_request_duration_milliseconds_bucket") && canary:
			return canaryP99
		case strings.Contains(q, "istio_request_duration_milliseconds_bucket"):
			return primaryP99
		case strings.Contains(q, "error_rate") && canary:
			return canaryErr
		case strings.Contains(q, "error_rate"):
			return primaryErr
		}
		return ""
	}
}

func metricsApp(a *v1.CanaryApp) {
	a.Spec.PrometheusQuery = ""
	a.Spec.Analysis.Metrics = []v1.AnalysisMetric{
		{Name: v1.MetricRequestDuration, ThresholdRange: &v1.ThresholdRange{Max: ptr("500")}},
		{Name: "errors", Query: `sum(rate(error_rate{destination_workload="{{ .Workload }}",destination_workload_namespace="{{ .Namespace }}"}[{{ .Interval }}]))`,
			CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "50%"}},
	}
}

// TestMetricsPromoteAGoodCanary: every check judges both metrics, records
// each one's value and verdict, and a canary as good as its primary is
// promoted.
func TestMetricsPromoteAGoodCanary(t *testing.T) {
	g := NewWithT(t)
	prom := newScriptedProm(t, byWorkload("120", "110", "0.02", "0.02"))
	startManager(t, nil)
	_, app := stableApp(t, g, prom.URL, nil, metricsApp)
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	final := get(g, app)
	g.Expect(final.Status.Checks).NotTo(BeEmpty())
	for _, c := range final.Status.Checks {
		g.Expect(c.Verdict).To(Equal(v1.CheckPass))
		g.Expect(c.Metrics).To(HaveLen(2))
		g.Expect(c.Metrics[0]).To(And(
			HaveField("Name", v1.MetricRequestDuration), HaveField("Value", "120"), HaveField("Verdict", v1.CheckPass)))
		g.Expect(c.Metrics[1]).To(And(
			HaveField("Name", "errors"), HaveField("Value", "0.02"), HaveField("PrimaryValue", "0.02"), HaveField("Verdict", v1.CheckPass)))
		g.Expect(c.Value).To(Equal("request-duration=120 errors=0.02"))
	}
	g.Expect(prom.seen(`destination_workload="canaryapp-sample-canary",destination_workload_namespace="` + app.Namespace + `"}[`)).To(BeTrue())
	g.Expect(prom.seen(`destination_workload="canaryapp-sample",destination_workload_namespace=`)).To(BeTrue(), "the comparison queried the primary")
}

// TestMetricsRollBack: a slow canary fails request-duration; a canary twice
// as bad as the primary fails compareToPrimary.
func TestMetricsRollBack(t *testing.T) {
	for _, tc := range []struct {
		name, metric string
		answer       func(string) string
	}{
		{"slow", v1.MetricRequestDuration, byWorkload("900", "110", "0", "0")},
		{"twice the primary's errors", "errors", byWorkload("120", "110", "0.04", "0.02")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			prom := newScriptedProm(t, byWorkload("120", "110", "0.02", "0.02"))
			startManager(t, nil)
			ns, app := stableApp(t, g, prom.URL, nil, metricsApp)
			setImage(g, app, image("v3"))
			g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, poll).Should(Equal(int32(25)))
			prom.set(tc.answer)
			g.Eventually(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, timeout, poll).Should(Equal(v1.PhaseFailed))
			final := get(g, app)
			last := final.Status.Checks[len(final.Status.Checks)-1]
			g.Expect(last.Verdict).To(Equal(v1.CheckFail))
			var failed []string
			for _, m := range last.Metrics {
				if m.Verdict == v1.CheckFail {
					failed = append(failed, m.Name)
				}
			}
			g.Expect(failed).To(Equal([]string{tc.metric}))
			g.Expect(condition(final, v1.ConditionAnalysis).Message).To(ContainSubstring(tc.metric))
		})
	}
}

// TestMetricOnQueryError: a metric's own onQueryError decides what its
// error means: Fail rolls back at once, Hold (the default) only holds.
func TestMetricOnQueryError(t *testing.T) {
	g := NewWithT(t)
	prom := newScriptedProm(t, byWorkload("120", "110", "0", "0"))
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		metricsApp(a)
		a.Spec.Analysis.Metrics[0].OnQueryError = v1.QueryErrorFail
	})
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, poll).Should(Equal(int32(25)))
	prom.set(func(q string) string {
		if strings.Contains(q, "error_rate") {
			return "down" // a Hold metric: holds
		}
		return "120"
	})
	g.Eventually(func(g Gomega) v1.CheckVerdict {
		c := get(g, app).Status.Checks
		g.Expect(c).NotTo(BeEmpty())
		return c[len(c)-1].Verdict
	}, timeout, poll).Should(Equal(v1.CheckInconclusive))
	g.Expect(get(g, app).Status.Phase).To(Equal(v1.PhaseProgressing))
	prom.set(func(string) string { return "down" })
	g.Eventually(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, timeout, poll).Should(Equal(v1.PhaseFailed))
}

// TestMetricTemplateFromTheAdmin: a templateRef uses the admin's query
// from a labelled ConfigMap of the operator's namespace, with arguments;
// one that does not exist holds the canary with a reason.
func TestMetricTemplateFromTheAdmin(t *testing.T) {
	g := NewWithT(t)
	opNS := env.NewNamespace(t)
	g.Expect(env.Client.Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "vetted", Namespace: opNS, Labels: map[string]string{controllers.LabelMetricTemplates: "true"}},
		Data:       map[string]string{"error-ratio": `sum(rate(error_rate{destination_workload="{{ .Workload }}",response_code=~"{{ index .Args "codes" }}"}[{{ .Interval }}]))`},
	})).To(Succeed())
	prom := newScriptedProm(t, byWorkload("", "", "0.01", "0.01"))
	startManager(t, nil, func(r *controllers.CanaryAppReconciler) {
		r.MetricTemplates = controllers.ConfigMapTemplates{Reader: env.Client, Namespace: opNS}
	})
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.PrometheusQuery = ""
		a.Spec.Analysis.Metrics = []v1.AnalysisMetric{{Name: "errors", TemplateRef: &v1.MetricTemplateRef{Name: "error-ratio", Args: map[string]string{"codes": `5..`}},
			CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "0.01"}}}
	})
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	g.Expect(prom.seen(`error_rate{destination_workload="canaryapp-sample-canary",response_code=~"5.."}[`)).To(BeTrue())

	setSpec(g, app, func(a *v1.CanaryApp) { a.Spec.Analysis.Metrics[0].TemplateRef.Name = "not-there" })
	setImage(g, app, image("v4"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionAnalysis, metav1.ConditionUnknown, controllers.ReasonMetricTemplateNotFound))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(25)), "a missing template holds the canary")
}

// TestMetricValidation: metrics the API server refuses, readably.
func TestMetricValidation(t *testing.T) {
	ns := env.NewNamespace(t)
	yes := true
	for _, tc := range []struct {
		name string
		m    v1.AnalysisMetric
		want string
	}{
		{"no rule", v1.AnalysisMetric{Name: "x", Query: "up"}, "a metric needs a verdict rule"},
		{"non-empty and threshold", v1.AnalysisMetric{Name: "x", Query: "up", FailWhenNonEmpty: &yes, ThresholdRange: &v1.ThresholdRange{Max: ptr("1")}}, "failWhenNonEmpty alone"},
		{"no query", v1.AnalysisMetric{Name: "latency", ThresholdRange: &v1.ThresholdRange{Max: ptr("1")}}, "a metric needs a query or a templateRef, unless its name is a built-in metric"},
		{"query and template", v1.AnalysisMetric{Name: "x", Query: "up", TemplateRef: &v1.MetricTemplateRef{Name: "t"}, FailWhenNonEmpty: &yes}, "either query or templateRef"},
		{"empty range", v1.AnalysisMetric{Name: "x", Query: "up", ThresholdRange: &v1.ThresholdRange{}}, "thresholdRange needs min, max or both"},
		{"min above max", v1.AnalysisMetric{Name: "x", Query: "up", ThresholdRange: &v1.ThresholdRange{Min: ptr("5"), Max: ptr("1")}}, "thresholdRange.min must not be above"},
		{"bad number", v1.AnalysisMetric{Name: "x", Query: "up", ThresholdRange: &v1.ThresholdRange{Max: ptr("1e3")}}, "thresholdRange.max"},
		{"bad margin", v1.AnalysisMetric{Name: "x", Query: "up", CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "-5%"}}, "maxIncrease"},
		{"bad arg key", v1.AnalysisMetric{Name: "x", TemplateRef: &v1.MetricTemplateRef{Name: "t", Args: map[string]string{"a-b": "1"}}, FailWhenNonEmpty: &yes}, "templateRef.args keys must be identifiers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			app.Spec.Analysis.Metrics = []v1.AnalysisMetric{tc.m}
			err := env.Client.Create(context.Background(), app)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
	t.Run("neither query nor metrics", func(t *testing.T) {
		g := NewWithT(t)
		app := sample(ns, "http://prometheus.istio-system.svc:9090")
		app.Spec.PrometheusQuery = ""
		err := env.Client.Create(context.Background(), app)
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("spec.prometheusQuery or spec.analysis.metrics must say how to judge the canary"))
	})
}
