package report

import (
	"fmt"
	"strings"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// maxMetricSeries bounds how many metrics a report shows (status is
// writable by others; the API allows ten plus the shorthand).
const maxMetricSeries = v1.MaxAnalysisMetrics + 1

// MetricRule describes one analysis metric's verdict rule in a few words,
// for the report ("request-duration: max 500").
func MetricRule(m v1.AnalysisMetric) string {
	var rules []string
	if m.FailWhenNonEmpty != nil && *m.FailWhenNonEmpty {
		rules = append(rules, "fails on any sample")
	}
	if r := m.ThresholdRange; r != nil {
		if r.Min != nil {
			rules = append(rules, "min "+*r.Min)
		}
		if r.Max != nil {
			rules = append(rules, "max "+*r.Max)
		}
	}
	if c := m.CompareToPrimary; c != nil {
		rules = append(rules, "at most "+c.MaxIncrease+" above the primary")
	}
	src := "query"
	switch {
	case m.TemplateRef != nil:
		src = "template " + m.TemplateRef.Name
	case m.Query == "":
		src = "built-in"
	}
	return fmt.Sprintf("%s (%s): %s", m.Name, src, strings.Join(rules, ", "))
}

// metricSeries splits the checks into one history per metric, in the
// order the metrics first appear: each entry is a check whose value and
// verdict are that metric's (its primary value in the note), so the same
// table and chart show it.
func metricSeries(checks []v1.AnalysisCheck) (names []string, series map[string][]v1.AnalysisCheck) {
	series = map[string][]v1.AnalysisCheck{}
	for _, c := range checks {
		for _, m := range c.Metrics {
			if _, ok := series[m.Name]; !ok {
				if len(names) == maxMetricSeries {
					continue
				}
				names = append(names, m.Name)
			}
			note := m.Message
			if m.PrimaryValue != "" {
				note = strings.TrimSuffix("primary "+m.PrimaryValue+"; "+note, "; ")
			}
			series[m.Name] = append(series[m.Name], v1.AnalysisCheck{Time: c.Time, Weight: c.Weight, Value: m.Value, Verdict: m.Verdict, Message: note})
		}
	}
	return names, series
}

// metricsText is the commit message's per-metric part: the rules, then a
// table per metric.
func metricsText(in Input, checks []v1.AnalysisCheck, first int) string {
	names, series := metricSeries(checks)
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	if len(in.Metrics) > 0 {
		b.WriteString("\nMetrics:\n")
		for _, r := range in.Metrics {
			b.WriteString("  " + line(r, maxReason) + "\n")
		}
	}
	for _, n := range names {
		fmt.Fprintf(&b, "\nMetric %s (oldest first):\n", line(n, maxCell))
		b.WriteString(textTable(series[n], first))
	}
	return b.String()
}

// metricsMarkdown is the pull request's per-metric part: the rules, then a
// chart and a table per metric.
func metricsMarkdown(in Input, checks []v1.AnalysisCheck, first int) string {
	names, series := metricSeries(checks)
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	if len(in.Metrics) > 0 {
		b.WriteString("Metrics:\n\n")
		for _, r := range in.Metrics {
			b.WriteString("- " + md(line(r, maxReason)) + "\n")
		}
		b.WriteString("\n")
	}
	for _, n := range names {
		fmt.Fprintf(&b, "#### Metric %s\n\n", code(n, maxCell))
		b.WriteString(fenced("text", Chart(series[n])))
		b.WriteString("\n")
		b.WriteString(mdTable(series[n], first))
		b.WriteString("\n")
	}
	return b.String()
}
