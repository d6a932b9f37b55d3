// Package opmetrics exports the operator's own Prometheus metrics through
// controller-runtime's registry (served on the manager's metrics endpoint).
package opmetrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

var (
	canaryWeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "canaryop_canary_weight_percent",
		Help: "Percentage of an app's traffic routed to its canary.",
	}, []string{"namespace", "name"})
	phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "canaryop_phase",
		Help: "1 for the phase a CanaryApp is in, 0 for the others.",
	}, []string{"namespace", "name", "phase"})
	checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "canaryop_analysis_checks_total",
		Help: "Analysis checks run, by verdict.",
	}, []string{"namespace", "name", "verdict"})
	outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "canaryop_outcomes_total",
		Help: "Canary outcomes, by outcome (Promoted, RolledBack).",
	}, []string{"namespace", "name", "outcome"})
	writeBacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "canaryop_writeback_attempts_total",
		Help: "Git write-back attempts, by result (ok, error).",
	}, []string{"namespace", "name", "result"})
)

var phases = []v1.Phase{v1.PhaseInitializing, v1.PhaseStable, v1.PhaseProgressing, v1.PhasePromoting, v1.PhaseFailed, v1.PhaseStalled}

func init() {
	metrics.Registry.MustRegister(canaryWeight, phase, checks, outcomes, writeBacks)
}

// Observe records the gauges of one app from its status.
func Observe(app *v1.CanaryApp) {
	canaryWeight.WithLabelValues(app.Namespace, app.Name).Set(float64(app.Status.CanaryWeight))
	for _, p := range phases {
		v := 0.0
		if app.Status.Phase == p {
			v = 1
		}
		phase.WithLabelValues(app.Namespace, app.Name, string(p)).Set(v)
	}
}

// CheckDone counts one analysis check.
func CheckDone(app *v1.CanaryApp, verdict v1.CheckVerdict) {
	checks.WithLabelValues(app.Namespace, app.Name, string(verdict)).Inc()
}

// Outcome counts one canary outcome.
func Outcome(app *v1.CanaryApp, outcome string) {
	outcomes.WithLabelValues(app.Namespace, app.Name, outcome).Inc()
}

// WriteBack counts one write-back attempt.
func WriteBack(app *v1.CanaryApp, result string) {
	writeBacks.WithLabelValues(app.Namespace, app.Name, result).Inc()
}

// Forget drops every series of a deleted app.
func Forget(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "name": name}
	canaryWeight.DeletePartialMatch(l)
	phase.DeletePartialMatch(l)
	checks.DeletePartialMatch(l)
	outcomes.DeletePartialMatch(l)
	writeBacks.DeletePartialMatch(l)
}
