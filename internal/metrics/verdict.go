package metrics

import (
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/common/model"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// maxMessage bounds Result.Message: it lands in status and events, where a
// long message would only bury the point.
const maxMessage = 256

// evaluate turns a query answer into a verdict. See the package doc for the
// rules.
func evaluate(val model.Value) Result {
	switch v := val.(type) {
	case model.Vector:
		return evaluateVector(v)
	case *model.Scalar:
		return evaluateScalar(float64(v.Value))
	case model.Matrix:
		return inconclusive("", "query returned a range vector (matrix); it must return an instant vector or a scalar")
	case *model.String:
		return inconclusive("", "query returned a string; it must return an instant vector or a scalar")
	case nil:
		return inconclusive("", "Prometheus returned no result")
	default:
		return inconclusive("", fmt.Sprintf("query returned a %s; it must return an instant vector or a scalar", val.Type()))
	}
}

func evaluateVector(vec model.Vector) Result {
	if len(vec) == 0 {
		return Result{Verdict: v1.CheckPass, Value: "empty"}
	}
	var worst float64
	n := 0
	for _, s := range vec {
		x := sampleValue(s)
		if math.IsNaN(x) {
			continue
		}
		if n == 0 || x > worst {
			worst = x
		}
		n++
	}
	if n == 0 {
		return inconclusive("NaN", fmt.Sprintf("query returned only NaN (%d series); no data to judge the release", len(vec)))
	}
	value := formatFloat(worst)
	if n > 1 {
		value = fmt.Sprintf("%s (%d series, max)", value, n)
	}
	// The series' labels are not shown: the URL may reach another team's
	// Prometheus, and label values are its data (namespaces, secret names).
	return Result{
		Verdict: v1.CheckFail,
		Value:   value,
		Message: fmt.Sprintf("query returned %d series; highest value %s", n, formatFloat(worst)),
		Samples: n,
		Max:     worst,
	}
}

// sampleValue is a float sample's value, or a native histogram sample's
// observation count: both are what the query reported for that series.
func sampleValue(s *model.Sample) float64 {
	if s.Histogram != nil {
		return float64(s.Histogram.Count)
	}
	return float64(s.Value)
}

func evaluateScalar(x float64) Result {
	switch {
	case math.IsNaN(x):
		return inconclusive("NaN", "query returned the scalar NaN; no data to judge the release")
	case x == 0:
		return Result{Verdict: v1.CheckPass, Value: "0", Samples: 1}
	default:
		return Result{Verdict: v1.CheckFail, Value: formatFloat(x), Samples: 1, Max: x}
	}
}

// FormatValue writes a value as Result.Value does.
func FormatValue(x float64) string { return formatFloat(x) }

// formatFloat writes whole numbers without a decimal point and other numbers
// with at most six significant digits, so values stay short in status.
func formatFloat(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return strconv.FormatFloat(x, 'f', 0, 64)
	default:
		return strconv.FormatFloat(x, 'g', 6, 64)
	}
}

func inconclusive(value, msg string) Result {
	return Result{Verdict: v1.CheckInconclusive, Value: value, Message: truncate(msg)}
}

// truncate cuts a message to maxMessage characters (see safetext.Truncate).
func truncate(s string) string { return safetext.Truncate(s, maxMessage) }
