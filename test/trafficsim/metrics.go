package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Istio's standard metric labels (a subset: the ones a query about an app's
// answers uses). Names and meanings follow Istio's telemetry docs.
var istioLabels = []string{
	"reporter",
	"source_workload",
	"source_workload_namespace",
	"destination_workload",
	"destination_workload_namespace",
	"destination_app",
	"destination_version",
	"destination_service",
	"destination_service_name",
	"destination_service_namespace",
	"request_protocol",
	"response_code",
	"response_flags",
}

// SourceWorkload is the source_workload of every request trafficsim makes.
const SourceWorkload = "trafficsim"

// Metrics holds trafficsim's counters in their own registry, so that /metrics
// shows only what a mesh would export and nothing about this process.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	unrouted *prometheus.CounterVec
	// durations is istio_request_duration_milliseconds (latency.go).
	durations *prometheus.HistogramVec
}

// NewMetrics creates and registers the counters.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests answered by the simulated app pods, with Istio's labels (trafficsim: a stand-in for the data plane).",
		}, istioLabels),
		unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trafficsim_requests_unrouted_total",
			Help: "Requests trafficsim could not route to any pod, by app and reason.",
		}, []string{"app", "reason"}),
	}
	m.durations = newDurationHistogram()
	m.registry.MustRegister(m.requests, m.unrouted, m.durations)
	return m
}

// Answered counts one request that target's pods answered with code.
func (m *Metrics) Answered(s Split, t Target, code int) {
	m.requests.With(istioRequestLabels(s, t, code)).Inc()
}

// Unrouted counts one request of app that reached no pod.
func (m *Metrics) Unrouted(app, reason string) {
	m.unrouted.WithLabelValues(app, reason).Inc()
}

// Handler serves the counters in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
