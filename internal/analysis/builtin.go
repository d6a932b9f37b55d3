package analysis

import v1 "github.com/atzedevries/canaryop/api/v1"

// Builtin returns the query template of a built-in metric, scoped to the
// measured workload's own pods by Istio's standard labels, or "" when name
// is not built in. Only the destination reporter is counted, so that a
// request seen by both sidecars counts once.
func Builtin(name string) string {
	switch name {
	case v1.MetricRequestSuccessRate:
		return `sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload="{{ .Workload }}",response_code!~"5.."}[{{ .Interval }}]))` +
			` / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload="{{ .Workload }}"}[{{ .Interval }}])) * 100`
	case v1.MetricRequestDuration:
		return `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload="{{ .Workload }}"}[{{ .Interval }}])))`
	}
	return ""
}
