package analysis

import (
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// ShorthandName names the metric spec.prometheusQuery stands for.
const ShorthandName = "prometheus-query"

// minInterval is the shortest default window: a rate over less than two
// scrapes of a 15s scrape interval has no data.
const minInterval = 30 * time.Second

// Metrics are the metrics a check of app judges: spec.prometheusQuery as
// a failWhenNonEmpty metric, then spec.analysis.metrics.
func Metrics(app *v1.CanaryApp) []v1.AnalysisMetric {
	var out []v1.AnalysisMetric
	if q := app.Spec.PrometheusQuery; q != "" {
		yes := true
		out = append(out, v1.AnalysisMetric{Name: ShorthandName, Query: q, FailWhenNonEmpty: &yes})
	}
	if a := app.Spec.Analysis; a != nil {
		out = append(out, a.Metrics...)
	}
	return out
}

// Policy is a metric's onQueryError: its own, else the analysis'.
func Policy(m v1.AnalysisMetric, a v1.Analysis) v1.QueryErrorPolicy {
	if m.OnQueryError != "" {
		return m.OnQueryError
	}
	return a.OnQueryError
}

// Window is the metric's {{ .Interval }}: its own interval, else the
// analysis interval, at least 30s.
func Window(m v1.AnalysisMetric, a v1.Analysis) time.Duration {
	if m.Interval != nil && m.Interval.Duration > 0 {
		return m.Interval.Duration
	}
	return max(a.Interval, minInterval)
}

// WindowSince is Window cut to the time the canary has run (elapsed, at
// least one second): the canary Deployment keeps its name from one release
// to the next, so a longer window would judge the new canary partly on
// the answers of the previous one's pods. An early check over a short
// window may find no data; it is then inconclusive and holds.
func WindowSince(m v1.AnalysisMetric, a v1.Analysis, elapsed time.Duration) time.Duration {
	return min(Window(m, a), max(elapsed.Truncate(time.Second), time.Second))
}

// QueryTemplate is the template of m: its query, else the built-in one;
// "" for a templateRef, which the caller resolves.
func QueryTemplate(m v1.AnalysisMetric) string {
	if m.Query != "" {
		return m.Query
	}
	if m.TemplateRef != nil {
		return ""
	}
	return Builtin(m.Name)
}
