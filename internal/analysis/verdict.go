package analysis

import (
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// maxMessage bounds a MetricCheck's message.
const maxMessage = 256

// Judge applies m's verdict rule to the canary's answer (and, for
// compareToPrimary, the primary's):
//
//   - an answer that is Inconclusive (an error, NaN only) stays so;
//   - failWhenNonEmpty: any sample fails (metrics.Provider's own verdict);
//   - thresholdRange and compareToPrimary need exactly one sample, else the
//     metric is Inconclusive (no data yet, or a query that returns a
//     series per pod); the value fails below min or above max, and above
//     the primary's value plus maxIncrease (absolute, or a percentage of
//     the primary's value).
func Judge(m v1.AnalysisMetric, canary metrics.Result, primary *metrics.Result) v1.MetricCheck {
	out := v1.MetricCheck{Name: m.Name, Value: canary.Value}
	if canary.Verdict == v1.CheckInconclusive {
		return inconclusive(out, canary.Reason, canary.Message)
	}
	if m.FailWhenNonEmpty != nil && *m.FailWhenNonEmpty {
		out.Verdict, out.Message = canary.Verdict, safetext.Truncate(canary.Message, maxMessage)
		return out
	}
	x, msg, ok := single(canary)
	if !ok {
		return inconclusive(out, "", msg)
	}
	out.Value = metrics.FormatValue(x)
	if r := m.ThresholdRange; r != nil {
		if bad, msg := outside(x, r); bad {
			out.Verdict, out.Message = v1.CheckFail, msg
			return out
		}
	}
	if c := m.CompareToPrimary; c != nil {
		return compare(out, x, c, primary)
	}
	out.Verdict = v1.CheckPass
	return out
}

func compare(out v1.MetricCheck, x float64, c *v1.CompareToPrimary, primary *metrics.Result) v1.MetricCheck {
	if primary == nil {
		return inconclusive(out, "", "the primary's value is missing")
	}
	if primary.Verdict == v1.CheckInconclusive {
		out.PrimaryValue = primary.Value
		return inconclusive(out, primary.Reason, "primary: "+primary.Message)
	}
	p, msg, ok := single(*primary)
	if !ok {
		return inconclusive(out, "", "primary: "+msg)
	}
	out.PrimaryValue = metrics.FormatValue(p)
	limit, ok := Limit(p, c.MaxIncrease)
	if !ok {
		return inconclusive(out, "", fmt.Sprintf("compareToPrimary.maxIncrease %q is not a number or percentage", c.MaxIncrease))
	}
	if x > limit {
		out.Verdict = v1.CheckFail
		out.Message = fmt.Sprintf("%s is above the primary's %s by more than %s", out.Value, out.PrimaryValue, c.MaxIncrease)
		return out
	}
	out.Verdict = v1.CheckPass
	return out
}

// Limit is the highest passing canary value for a primary value p and a
// maxIncrease: p+a for an absolute a, p*(1+r/100) for "r%".
func Limit(p float64, maxIncrease string) (float64, bool) {
	if r, ok := strings.CutSuffix(maxIncrease, "%"); ok {
		f, err := strconv.ParseFloat(r, 64)
		if err != nil || f < 0 {
			return 0, false
		}
		return p + abs(p)*f/100, true
	}
	a, err := strconv.ParseFloat(maxIncrease, 64)
	if err != nil || a < 0 {
		return 0, false
	}
	return p + a, true
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// single is the one value of an answer, or why there is none.
func single(r metrics.Result) (float64, string, bool) {
	switch {
	case r.Samples == 0:
		return 0, "the query returned no sample (no traffic yet?); a threshold needs one value", false
	case r.Samples > 1:
		return 0, fmt.Sprintf("the query returned %d series; a threshold needs one value (aggregate with sum or max)", r.Samples), false
	}
	return r.Max, "", true
}

// outside reports whether x lies outside r, and how.
func outside(x float64, r *v1.ThresholdRange) (bool, string) {
	v := metrics.FormatValue(x)
	if r.Min != nil {
		if lo, err := strconv.ParseFloat(*r.Min, 64); err == nil && x < lo {
			return true, fmt.Sprintf("%s is below the minimum %s", v, *r.Min)
		}
	}
	if r.Max != nil {
		if hi, err := strconv.ParseFloat(*r.Max, 64); err == nil && x > hi {
			return true, fmt.Sprintf("%s is above the maximum %s", v, *r.Max)
		}
	}
	return false, ""
}

func inconclusive(out v1.MetricCheck, reason, msg string) v1.MetricCheck {
	out.Verdict, out.Reason, out.Message = v1.CheckInconclusive, reason, safetext.Truncate(msg, maxMessage)
	return out
}

// Summary is one check's outcome over all its metrics.
type Summary struct {
	Verdict v1.CheckVerdict
	Value   string
	Message string
	Reason  string
	// CountsAsFailure: an inconclusive metric's policy is Fail.
	CountsAsFailure bool
}

// Summarize sums a check's metrics up: Fail when one fails, else
// Inconclusive when one is, else Pass. policy gives each metric's
// onQueryError; an inconclusive metric whose policy is Fail makes the
// check count as failed, unless the admin's allow-list refused the query
// (no evidence about the canary either way).
func Summarize(checks []v1.MetricCheck, policy func(name string) v1.QueryErrorPolicy) Summary {
	s := Summary{Verdict: v1.CheckPass}
	var failed, unsure, values []string
	for _, c := range checks {
		values = append(values, c.Name+"="+orDash(c.Value))
		switch c.Verdict {
		case v1.CheckFail:
			failed = append(failed, c.Name+": "+c.Message)
		case v1.CheckInconclusive:
			unsure = append(unsure, c.Name+": "+c.Message)
			if s.Reason == "" {
				s.Reason = c.Reason
			}
			if policy(c.Name) == v1.QueryErrorFail && c.Reason != v1.ReasonPrometheusURLNotAllowed {
				s.CountsAsFailure = true
			}
		}
	}
	s.Value = safetext.Truncate(strings.Join(values, " "), 128)
	switch {
	case len(failed) > 0:
		s.Verdict, s.Message, s.Reason = v1.CheckFail, strings.Join(failed, "; "), ""
		s.CountsAsFailure = false
	case len(unsure) > 0:
		s.Verdict, s.Message = v1.CheckInconclusive, strings.Join(unsure, "; ")
	}
	s.Message = safetext.Truncate(s.Message, maxMessage)
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
