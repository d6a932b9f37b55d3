package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// istioDurationBuckets are the buckets Istio's proxies use for
// istio_request_duration_milliseconds.
var istioDurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

func newDurationHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "istio_request_duration_milliseconds",
		Help:    "Duration of the requests answered by the simulated app pods, with Istio's labels (trafficsim).",
		Buckets: istioDurationBuckets,
	}, istioLabels)
}

// istioRequestLabels are the labels of one answered request, as the
// destination's sidecar reports them.
func istioRequestLabels(s Split, t Target, code int) prometheus.Labels {
	service := s.App
	if t.Service != "" {
		service = t.Service
	}
	return prometheus.Labels{
		"reporter":                       "destination",
		"source_workload":                SourceWorkload,
		"source_workload_namespace":      "unknown",
		"destination_workload":           t.Workload,
		"destination_workload_namespace": s.Namespace,
		"destination_app":                s.App,
		"destination_version":            t.Version(),
		"destination_service":            service + "." + s.Namespace + ".svc.cluster.local",
		"destination_service_name":       service,
		"destination_service_namespace":  s.Namespace,
		"request_protocol":               "http",
		"response_code":                  strconv.Itoa(code),
		"response_flags":                 "-",
	}
}

// Took records how long one request that target's pods answered took.
func (m *Metrics) Took(s Split, t Target, code int, d time.Duration) {
	m.durations.With(istioRequestLabels(s, t, code)).Observe(float64(d) / float64(time.Millisecond))
}
