package analysis

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/metrics"
)

var vars = Vars{
	Name: "shop", Namespace: "team-a", Canary: "shop-canary", Primary: "shop",
	Service: "shop", Interval: "1m", Workload: "shop-canary",
	Args: map[string]string{"code": `5..`, "evil": `"} or vector(1) #`},
}

func TestRenderVariables(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"{{ .Name }}", "shop"},
		{"{{ .Namespace }}", "team-a"},
		{"{{ .Canary }}", "shop-canary"},
		{"{{ .Primary }}", "shop"},
		{"{{ .Service }}", "shop"},
		{"{{ .Interval }}", "1m"},
		{"{{ .Workload }}", "shop-canary"},
		{`{{ index .Args "code" }}`, "5.."},
		{`x{code="{{ index .Args "evil" }}"}`, `x{code="\"} or vector(1) #"}`},
		{"no variables", "no variables"},
		{"{{/* a comment */}}rate(x[{{.Interval}}])", "rate(x[1m])"},
	} {
		got, err := Render(tc.tmpl, vars)
		if err != nil || got != tc.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, tmpl := range []string{
		"{{ .Nope }}",
		`{{ index .Args "missing" }}`,
		`{{ printf "%0999999999d" 1 }}`,
		"{{ if .Name }}x{{ end }}",
		"{{ range .Args }}x{{ end }}",
		`{{ define "x" }}y{{ end }}{{ template "x" }}`,
		"{{ $x := .Name }}{{ $x }}",
		"{{ .Name | len }}",
		"{{ .Args.code }}",
		"{{ len .Args }}",
		"{{ .Name",
		strings.Repeat("x", MaxQueryBytes+1),
	} {
		if got, err := Render(tmpl, vars); !errors.Is(err, ErrTemplate) {
			t.Errorf("Render(%.40q) = %.40q, %v; want ErrTemplate", tmpl, got, err)
		}
	}
}

func TestBuiltinsRenderPerWorkload(t *testing.T) {
	for _, name := range []string{v1.MetricRequestSuccessRate, v1.MetricRequestDuration} {
		q, err := Render(Builtin(name), vars)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`destination_workload="shop-canary"`, `destination_workload_namespace="team-a"`, `[1m]`, `reporter="destination"`} {
			if !strings.Contains(q, want) {
				t.Errorf("%s: %s lacks %s", name, q, want)
			}
		}
	}
	if Builtin("other") != "" {
		t.Error("unknown names are not built in")
	}
}

func val(x float64) metrics.Result {
	return metrics.Result{Verdict: v1.CheckFail, Value: metrics.FormatValue(x), Samples: 1, Max: x, Message: "query returned 1 series"}
}

func str(s string) *string { return &s }

func TestJudge(t *testing.T) {
	yes := true
	rangeMin := v1.AnalysisMetric{Name: "sr", ThresholdRange: &v1.ThresholdRange{Min: str("99")}}
	rangeMax := v1.AnalysisMetric{Name: "p99", ThresholdRange: &v1.ThresholdRange{Max: str("500")}}
	both := v1.AnalysisMetric{Name: "b", ThresholdRange: &v1.ThresholdRange{Min: str("1"), Max: str("2")}}
	rel := v1.AnalysisMetric{Name: "err", CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "50%"}}
	absolute := v1.AnalysisMetric{Name: "err", CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "0.5"}}
	capped := v1.AnalysisMetric{Name: "err", ThresholdRange: &v1.ThresholdRange{Max: str("10")}, CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "50%"}}
	nonEmpty := v1.AnalysisMetric{Name: "q", FailWhenNonEmpty: &yes}
	empty := metrics.Result{Verdict: v1.CheckPass, Value: "empty"}
	errored := metrics.Result{Verdict: v1.CheckInconclusive, Message: "down", Reason: "X"}
	many := metrics.Result{Verdict: v1.CheckFail, Value: "3 (2 series, max)", Samples: 2, Max: 3}
	p := func(x float64) *metrics.Result { r := val(x); return &r }
	for _, tc := range []struct {
		name    string
		m       v1.AnalysisMetric
		canary  metrics.Result
		primary *metrics.Result
		want    v1.CheckVerdict
	}{
		{"min passes", rangeMin, val(99.5), nil, v1.CheckPass},
		{"min at bound passes", rangeMin, val(99), nil, v1.CheckPass},
		{"min fails", rangeMin, val(98), nil, v1.CheckFail},
		{"max passes", rangeMax, val(120), nil, v1.CheckPass},
		{"max fails", rangeMax, val(501), nil, v1.CheckFail},
		{"range below", both, val(0.5), nil, v1.CheckFail},
		{"range inside", both, val(1.5), nil, v1.CheckPass},
		{"range above", both, val(2.5), nil, v1.CheckFail},
		{"threshold without data", rangeMax, empty, nil, v1.CheckInconclusive},
		{"threshold on many series", rangeMax, many, nil, v1.CheckInconclusive},
		{"query error", rangeMax, errored, nil, v1.CheckInconclusive},
		{"non-empty fails", nonEmpty, val(3), nil, v1.CheckFail},
		{"empty passes", nonEmpty, empty, nil, v1.CheckPass},
		{"non-empty error", nonEmpty, errored, nil, v1.CheckInconclusive},
		{"equal to primary passes", rel, val(4), p(4), v1.CheckPass},
		{"within relative margin", rel, val(5.9), p(4), v1.CheckPass},
		{"twice the primary fails", rel, val(8), p(4), v1.CheckFail},
		{"better than primary passes", rel, val(1), p(4), v1.CheckPass},
		{"relative on a zero primary", rel, val(0.1), p(0), v1.CheckFail},
		{"absolute within", absolute, val(4.5), p(4), v1.CheckPass},
		{"absolute above", absolute, val(4.6), p(4), v1.CheckFail},
		{"primary without data", rel, val(4), &empty, v1.CheckInconclusive},
		{"primary error", rel, val(4), &errored, v1.CheckInconclusive},
		{"primary missing", rel, val(4), nil, v1.CheckInconclusive},
		{"threshold and compare: threshold fails first", capped, val(11), p(10), v1.CheckFail},
		{"threshold and compare: compare fails", capped, val(9), p(2), v1.CheckFail},
		{"threshold and compare: both pass", capped, val(3), p(2), v1.CheckPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Judge(tc.m, tc.canary, tc.primary)
			if got.Verdict != tc.want || got.Name != tc.m.Name {
				t.Errorf("Judge = %+v, want %s", got, tc.want)
			}
			if got.Verdict == v1.CheckFail && got.Message == "" {
				t.Error("a failure says why")
			}
			if tc.primary != nil && tc.primary.Samples == 1 && tc.m.CompareToPrimary != nil && got.PrimaryValue == "" && got.Verdict != v1.CheckFail {
				t.Error("the primary's value is recorded")
			}
		})
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		inc  string
		want float64
		ok   bool
	}{
		{10, "10%", 11, true}, {10, "0%", 10, true}, {10, "2", 12, true}, {10, "0.5", 10.5, true},
		{-10, "10%", -9, true}, {10, "x", 0, false}, {10, "-1", 0, false},
	} {
		got, ok := Limit(tc.p, tc.inc)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("Limit(%v, %q) = %v, %v", tc.p, tc.inc, got, ok)
		}
	}
}

func TestSummarize(t *testing.T) {
	pass := v1.MetricCheck{Name: "a", Value: "1", Verdict: v1.CheckPass}
	fail := v1.MetricCheck{Name: "b", Value: "9", Verdict: v1.CheckFail, Message: "9 is above the maximum 5"}
	unsure := v1.MetricCheck{Name: "c", Verdict: v1.CheckInconclusive, Message: "down", Reason: "R"}
	refused := v1.MetricCheck{Name: "c", Verdict: v1.CheckInconclusive, Reason: v1.ReasonPrometheusURLNotAllowed}
	hold := func(string) v1.QueryErrorPolicy { return v1.QueryErrorHold }
	fails := func(string) v1.QueryErrorPolicy { return v1.QueryErrorFail }
	for _, tc := range []struct {
		name    string
		checks  []v1.MetricCheck
		policy  func(string) v1.QueryErrorPolicy
		want    v1.CheckVerdict
		counts  bool
		reason  string
		message string
	}{
		{"all pass", []v1.MetricCheck{pass, pass}, hold, v1.CheckPass, false, "", ""},
		{"one fails", []v1.MetricCheck{pass, fail, unsure}, fails, v1.CheckFail, false, "", "b: 9 is above"},
		{"inconclusive holds", []v1.MetricCheck{pass, unsure}, hold, v1.CheckInconclusive, false, "R", "c: down"},
		{"inconclusive fails by policy", []v1.MetricCheck{pass, unsure}, fails, v1.CheckInconclusive, true, "R", "c: down"},
		{"refused never fails", []v1.MetricCheck{refused}, fails, v1.CheckInconclusive, false, v1.ReasonPrometheusURLNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize(tc.checks, tc.policy)
			if s.Verdict != tc.want || s.CountsAsFailure != tc.counts || s.Reason != tc.reason || !strings.Contains(s.Message, tc.message) {
				t.Errorf("Summarize = %+v", s)
			}
			if !strings.Contains(s.Value, tc.checks[0].Name+"=") {
				t.Errorf("value %q names every metric", s.Value)
			}
		})
	}
}

func TestMetricsAndDefaults(t *testing.T) {
	app := &v1.CanaryApp{Spec: v1.CanaryAppSpec{PrometheusQuery: "up == 0", Analysis: &v1.AnalysisSpec{
		OnQueryError: v1.QueryErrorFail,
		Metrics: []v1.AnalysisMetric{
			{Name: v1.MetricRequestDuration, ThresholdRange: &v1.ThresholdRange{Max: str("500")}, OnQueryError: v1.QueryErrorHold},
			{Name: "x", Query: "q", Interval: &metav1.Duration{Duration: 2 * time.Minute}, ThresholdRange: &v1.ThresholdRange{Max: str("1")}},
		},
	}}}
	ms := Metrics(app)
	if len(ms) != 3 || ms[0].Name != ShorthandName || ms[0].Query != "up == 0" || !*ms[0].FailWhenNonEmpty {
		t.Fatalf("Metrics = %+v", ms)
	}
	a := app.Spec.EffectiveAnalysis()
	if Policy(ms[1], a) != v1.QueryErrorHold || Policy(ms[2], a) != v1.QueryErrorFail {
		t.Error("a metric's onQueryError overrides the analysis'")
	}
	if Window(ms[1], a) != 30*time.Second || Window(ms[2], a) != 2*time.Minute {
		t.Error("windows")
	}
	if WindowSince(ms[2], a, 10*time.Minute) != 2*time.Minute || WindowSince(ms[2], a, 7500*time.Millisecond) != 7*time.Second || WindowSince(ms[2], a, 0) != time.Second {
		t.Error("a window never reaches back before the canary started")
	}
	if QueryTemplate(ms[1]) != Builtin(v1.MetricRequestDuration) || QueryTemplate(ms[2]) != "q" {
		t.Error("query templates")
	}
	if QueryTemplate(v1.AnalysisMetric{Name: v1.MetricRequestDuration, TemplateRef: &v1.MetricTemplateRef{Name: "t"}}) != "" {
		t.Error("a templateRef is resolved by the caller, even under a built-in name")
	}
}

// FuzzRender: any template and argument renders or fails with
// ErrTemplate, never panics, and never returns more than MaxQueryBytes.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"{{ .Name }}", `{{ index .Args "a" }}`, `{{ printf "%099d" 1 }}`, "{{ if 1 }}{{ end }}", "{{", "}}", "{{ .Args }}", "{{ index .Args 1 }}", Builtin(v1.MetricRequestDuration)} {
		f.Add(s, `"\`)
	}
	f.Fuzz(func(t *testing.T, tmpl, arg string) {
		v := vars
		v.Args = map[string]string{"a": arg}
		out, err := Render(tmpl, v)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("error %v does not wrap ErrTemplate", err)
			}
			return
		}
		if len(out) > MaxQueryBytes {
			t.Fatalf("rendered %d bytes", len(out))
		}
		q, err := Render(`x{a="{{ index .Args "a" }}"}`, v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(q, "x{a="), "}")); err != nil || got != arg {
			t.Fatalf("argument %q escapes its string: %s (%v)", arg, q, err)
		}
	})
}
