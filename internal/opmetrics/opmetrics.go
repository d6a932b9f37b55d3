// Package opmetrics exports the operator's own Prometheus metrics through
// controller-runtime's registry (served on the manager's metrics endpoint).
//
// Families lists every metric with its type and labels: the Grafana dashboard
// and the alert rules (package monitoring) are checked against it, and a test
// checks it against what is registered, so neither can name a metric that the
// operator does not export.
package opmetrics

import (
	"math"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// Version and Revision are set at build time (-ldflags -X); Revision falls
// back to the VCS revision the Go toolchain stamped, if any.
var (
	Version  = "dev"
	Revision = ""
)

// Metric names, for the dashboard and the alert rules.
const (
	BuildInfo                 = "canaryop_build_info"
	CanaryWeight              = "canaryop_canary_weight_percent"
	Phase                     = "canaryop_phase"
	AnalysisChecks            = "canaryop_analysis_checks_total"
	AnalysisLastValue         = "canaryop_analysis_last_check_value"
	Outcomes                  = "canaryop_outcomes_total"
	CanaryDuration            = "canaryop_canary_duration_seconds"
	WriteBackAttempts         = "canaryop_writeback_attempts_total"
	WriteBackLatency          = "canaryop_writeback_latency_seconds"
	WriteBackPendingSince     = "canaryop_writeback_pending_since_timestamp_seconds"
	WriteBackPullRequestState = "canaryop_writeback_pull_request_state"
	Notifications             = "canaryop_notifications_total"
)

// Family describes one exported metric.
type Family struct {
	Name   string
	Type   string // gauge, counter or histogram
	Help   string
	Labels []string
}

// Series are the names a query may use for the family: a histogram's
// _bucket, _sum and _count, the name itself otherwise.
func (f Family) Series() []string {
	if f.Type == "histogram" {
		return []string{f.Name + "_bucket", f.Name + "_sum", f.Name + "_count"}
	}
	return []string{f.Name}
}

var app = []string{"namespace", "name"}

func labels(extra ...string) []string { return append(append([]string{}, app...), extra...) }

// Families are all metrics the operator exports besides controller-runtime's
// and the Go runtime's.
var Families = []Family{
	{BuildInfo, "gauge", "Always 1; the labels say which build of canaryop runs.", []string{"version", "revision", "goversion"}},
	{CanaryWeight, "gauge", "Percentage of an app's traffic routed to its canary.", labels()},
	{Phase, "gauge", "1 for the phase a CanaryApp is in; the other phases have no series (one series per app).", labels("phase")},
	{AnalysisChecks, "counter", "Analysis checks run, by verdict (Pass, Fail, Inconclusive).", labels("verdict")},
	{AnalysisLastValue, "gauge", "Value the last analysis check's query returned (the highest sample); absent while the query returns no sample.", labels()},
	{Outcomes, "counter", "Canary outcomes, by outcome (Promoted, RolledBack).", labels("outcome")},
	{CanaryDuration, "histogram", "Seconds from the start of a canary to its outcome, by outcome.", labels("outcome")},
	{WriteBackAttempts, "counter", "Git write-back attempts, by result (ok, error).", labels("result")},
	{WriteBackLatency, "histogram", "Seconds from a canary's outcome to its write-back landing in Git (commit pushed or pull request opened), retries included.", labels()},
	{WriteBackPendingSince, "gauge", "Unix time of the outcome whose write-back to Git is still pending; absent when none is.", labels()},
	{WriteBackPullRequestState, "gauge", "1 for the state (open, merged, closed) of the app's write-back pull request, 0 for the others; absent without one.", labels("state")},
	{Notifications, "counter", "Notifications of an app's transitions, by provider, event and result (sent, failed after its retries, dropped on a full queue, refused by the provider's namespace scope).", labels("provider", "event", "result")},
}

func family(name string) Family {
	for _, f := range Families {
		if f.Name == name {
			return f
		}
	}
	panic("opmetrics: no family " + name)
}

func gaugeVec(name string) *prometheus.GaugeVec {
	f := family(name)
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.Name, Help: f.Help}, f.Labels)
}

func counterVec(name string) *prometheus.CounterVec {
	f := family(name)
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: f.Name, Help: f.Help}, f.Labels)
}

func histogramVec(name string, buckets []float64) *prometheus.HistogramVec {
	f := family(name)
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: f.Name, Help: f.Help, Buckets: buckets}, f.Labels)
}

var (
	buildInfo   = gaugeVec(BuildInfo)
	canaryWt    = gaugeVec(CanaryWeight)
	phase       = gaugeVec(Phase)
	checks      = counterVec(AnalysisChecks)
	lastValue   = gaugeVec(AnalysisLastValue)
	outcomes    = counterVec(Outcomes)
	duration    = histogramVec(CanaryDuration, []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400})
	writeBacks  = counterVec(WriteBackAttempts)
	wbLatency   = histogramVec(WriteBackLatency, []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600})
	wbPending   = gaugeVec(WriteBackPendingSince)
	pullRequest = gaugeVec(WriteBackPullRequestState)
	notified    = counterVec(Notifications)

	// Collectors are registered with controller-runtime's registry.
	Collectors = []prometheus.Collector{buildInfo, canaryWt, phase, checks, lastValue, outcomes, duration, writeBacks, wbLatency, wbPending, pullRequest, notified}
)

var (
	phases        = []v1.Phase{v1.PhaseInitializing, v1.PhaseStable, v1.PhaseQueued, v1.PhaseProgressing, v1.PhaseSuspended, v1.PhasePromoting, v1.PhaseFailed, v1.PhaseStalled}
	verdicts      = []v1.CheckVerdict{v1.CheckPass, v1.CheckFail, v1.CheckInconclusive}
	outcomeNames  = []string{v1.ReasonPromoted, v1.ReasonRolledBack}
	results       = []string{"ok", "error"}
	pullReqStates = []string{"open", "merged", "closed"}
)

// canaryStarts remembers each app's status.canaryStartedAt from the last
// Observe: the reconcile that decides an outcome has already cleared it from
// the status when Outcome is called.
var canaryStarts sync.Map // "namespace/name" -> time.Time

func init() {
	metrics.Registry.MustRegister(Collectors...)
	buildInfo.WithLabelValues(Version, revision(), runtime.Version()).Set(1)
}

func revision() string {
	if Revision != "" {
		return Revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func key(namespace, name string) string { return namespace + "/" + name }

// Observe records the gauges of one app from its status. It also creates the
// app's counter series at zero, so that the first rollback is an increase
// that alert rules see, not a series that appears at 1.
func Observe(app *v1.CanaryApp) {
	ns, name := app.Namespace, app.Name
	canaryWt.WithLabelValues(ns, name).Set(float64(app.Status.CanaryWeight))
	// One series per app, not one per phase: at 10,000 apps the zeros of
	// the others were 70,000 series in memory and in every scrape.
	for _, p := range phases {
		if p != app.Status.Phase {
			phase.DeleteLabelValues(ns, name, string(p))
		}
	}
	if app.Status.Phase != "" {
		phase.WithLabelValues(ns, name, string(app.Status.Phase)).Set(1)
	}
	for _, v := range verdicts {
		checks.WithLabelValues(ns, name, string(v))
	}
	for _, o := range outcomeNames {
		outcomes.WithLabelValues(ns, name, o)
	}
	if app.Status.CanaryStartedAt != nil {
		canaryStarts.Store(key(ns, name), app.Status.CanaryStartedAt.Time)
	} else {
		canaryStarts.Delete(key(ns, name))
	}
	observeWriteBack(app)
	observeNotifications(app)
}

var notificationResults = []string{"sent", "failed", "dropped", "refused"}

// observeNotifications creates the notification series of each subscribed
// provider and kind at zero, so that the first failure is an increase.
func observeNotifications(app *v1.CanaryApp) {
	for _, n := range app.Spec.Notifications {
		kinds := n.Events
		if len(kinds) == 0 {
			kinds = v1.NotificationEvents
		}
		for _, k := range kinds {
			for _, r := range notificationResults {
				notified.WithLabelValues(app.Namespace, app.Name, n.Provider, string(k), r)
			}
		}
	}
}

// observeWriteBack sets the pending and pull request gauges; write-back
// attempts run in a controller of their own, so WriteBack sets them too.
func observeWriteBack(app *v1.CanaryApp) {
	ns, name := app.Namespace, app.Name
	if app.Spec.GitOps != nil {
		// Only apps that write back have attempts to count.
		for _, r := range results {
			writeBacks.WithLabelValues(ns, name, r)
		}
	}
	wb := app.Status.WriteBack
	if wb != nil && wb.Pending {
		wbPending.WithLabelValues(ns, name).Set(float64(wb.DecidedAt.Unix()))
	} else {
		wbPending.DeleteLabelValues(ns, name)
	}
	state := ""
	if wb != nil && wb.PullRequestURL != "" {
		state = strings.ToLower(wb.PullRequestState)
	}
	if state == "" {
		pullRequest.DeletePartialMatch(prometheus.Labels{"namespace": ns, "name": name})
		return
	}
	for _, s := range pullReqStates {
		pullRequest.WithLabelValues(ns, name, s).Set(boolValue(s == state))
	}
}

// CheckDone counts one analysis check and records the value its query
// returned: "3.5 (2 series, max)" records 3.5; "empty", "NaN" and a query
// that could not run leave no value.
func CheckDone(app *v1.CanaryApp, verdict v1.CheckVerdict, value string) {
	checks.WithLabelValues(app.Namespace, app.Name, string(verdict)).Inc()
	number, _, _ := strings.Cut(value, " ")
	if x, err := strconv.ParseFloat(number, 64); err == nil && !math.IsNaN(x) {
		lastValue.WithLabelValues(app.Namespace, app.Name).Set(x)
		return
	}
	lastValue.DeleteLabelValues(app.Namespace, app.Name)
}

// Outcome counts one canary outcome and observes how long the canary took,
// from the canary start of the app's last Observe (none after a restart of
// the operator that the deciding reconcile was the first of).
func Outcome(app *v1.CanaryApp, outcome string) {
	outcomes.WithLabelValues(app.Namespace, app.Name, outcome).Inc()
	if started, ok := canaryStarts.LoadAndDelete(key(app.Namespace, app.Name)); ok {
		duration.WithLabelValues(app.Namespace, app.Name, outcome).Observe(time.Since(started.(time.Time)).Seconds())
	}
}

// WriteBack counts one write-back attempt. A successful one observes the
// latency from the outcome (status.writeBack.decidedAt) to the end of the
// attempt (lastAttemptAt).
func WriteBack(app *v1.CanaryApp, result string) {
	writeBacks.WithLabelValues(app.Namespace, app.Name, result).Inc()
	if wb := app.Status.WriteBack; result == "ok" && wb != nil && wb.LastAttemptAt != nil {
		wbLatency.WithLabelValues(app.Namespace, app.Name).Observe(max(wb.LastAttemptAt.Sub(wb.DecidedAt.Time).Seconds(), 0))
	}
	observeWriteBack(app)
}

// Notification counts one notification of an app's event to provider;
// result is sent, failed, dropped or refused.
func Notification(namespace, name, provider, event, result string) {
	notified.WithLabelValues(namespace, name, provider, event, result).Inc()
}

// Forget drops every series of a deleted app.
func Forget(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "name": name}
	canaryWt.DeletePartialMatch(l)
	phase.DeletePartialMatch(l)
	checks.DeletePartialMatch(l)
	lastValue.DeletePartialMatch(l)
	outcomes.DeletePartialMatch(l)
	duration.DeletePartialMatch(l)
	writeBacks.DeletePartialMatch(l)
	wbLatency.DeletePartialMatch(l)
	wbPending.DeletePartialMatch(l)
	pullRequest.DeletePartialMatch(l)
	notified.DeletePartialMatch(l)
	canaryStarts.Delete(key(namespace, name))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
