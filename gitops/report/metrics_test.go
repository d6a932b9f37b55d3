package report

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func metricsInput() Input {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	check := func(i int, weight int32, p99, errs, prim string, dv, ev v1.CheckVerdict) v1.AnalysisCheck {
		verdict := v1.CheckPass
		if dv == v1.CheckFail || ev == v1.CheckFail {
			verdict = v1.CheckFail
		}
		return v1.AnalysisCheck{
			Time: metav1.NewTime(t0.Add(time.Duration(i) * 10 * time.Second)), Weight: weight, Verdict: verdict,
			Value: "request-duration=" + p99 + " errors=" + errs,
			Metrics: []v1.MetricCheck{
				{Name: "request-duration", Value: p99, Verdict: dv},
				{Name: "errors", Value: errs, PrimaryValue: prim, Verdict: ev, Message: map[bool]string{true: errs + " is above the primary's " + prim + " by more than 50%"}[ev == v1.CheckFail]},
			},
		}
	}
	max500 := "500"
	return Input{
		Namespace: "team-a", Name: "shop", Outcome: v1.OutcomeRolledBack, Image: "shop:v1", FailedImage: "shop:v2",
		Reason: "AnalysisFailed: 1 failed check(s) at weight 20",
		Checks: []v1.AnalysisCheck{
			check(0, 10, "120", "0.02", "0.02", v1.CheckPass, v1.CheckPass),
			check(1, 20, "130", "0.05", "0.02", v1.CheckPass, v1.CheckFail),
		},
		Metrics: []string{
			MetricRule(v1.AnalysisMetric{Name: "request-duration", ThresholdRange: &v1.ThresholdRange{Max: &max500}}),
			MetricRule(v1.AnalysisMetric{Name: "errors", Query: "q", CompareToPrimary: &v1.CompareToPrimary{MaxIncrease: "50%"}}),
		},
	}
}

// TestReportShowsEveryMetric: the commit message and the pull request show
// each metric's rule, and its value, primary value and verdict per check.
func TestReportShowsEveryMetric(t *testing.T) {
	in := metricsInput()
	msg := CommitMessage(in)
	_, body := PullRequest(in)
	for _, want := range []string{
		"request-duration (built-in): max 500",
		"errors (query): at most 50% above the primary",
		"Metric request-duration",
		"Metric errors",
		"primary 0.02",
		"0.05 is above the primary's 0.02",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
		if !strings.Contains(body, strings.ReplaceAll(want, "Metric ", "Metric `")) && !strings.Contains(body, want) {
			t.Errorf("pull request lacks %q:\n%s", want, body)
		}
	}
	if strings.Count(body, "verdict ") != 3 {
		t.Errorf("want a chart of the checks and one per metric:\n%s", body)
	}
	// Rows of the errors table: pass then fail.
	i := strings.Index(msg, "Metric errors")
	rows := strings.Split(msg[i:], "\n")
	if !strings.Contains(rows[2], "Pass") || !strings.Contains(rows[3], "Fail") || !strings.Contains(rows[3], "0.05") {
		t.Errorf("errors table:\n%s", strings.Join(rows[:4], "\n"))
	}
}

// TestReportWithoutMetricsIsUnchanged: the original spec's report has no
// metric sections.
func TestReportWithoutMetricsIsUnchanged(t *testing.T) {
	in := metricsInput()
	for i := range in.Checks {
		in.Checks[i].Metrics = nil
	}
	in.Metrics = nil
	if msg := CommitMessage(in); strings.Contains(msg, "Metric") {
		t.Errorf("no metrics, no metric sections:\n%s", msg)
	}
}
