package controllers

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/workload"
)

// Options are what one deployment of the reconciler chooses; everything
// else comes from the manager. cmd/ and the envtest suites build the
// reconciler through New, so both run the same wiring.
type Options struct {
	// Writer writes outcomes back to Git; nil disables write-back.
	Writer gitops.Writer
	// Metrics runs the analysis queries; nil is a Prometheus provider with
	// no allow-list and no credentials.
	Metrics metrics.Provider
	// Routes is the admin's route policy; nil allows only each app's own
	// Service host on the mesh.
	Routes *routepolicy.Policy
	// PodOptions are the admin's pod defaults.
	PodOptions []workload.Option
	// MaxConcurrentReconciles, WriteBackConcurrency, WriteBackTimeout and
	// PullRequestPoll: see CanaryAppReconciler; zero means the default.
	MaxConcurrentReconciles int
	WriteBackConcurrency    int
	WriteBackTimeout        time.Duration
	PullRequestPoll         time.Duration
}

// New builds the reconciler on mgr's clients: the cached client for owned
// objects, the API reader for CanaryApps and for re-reads before a create.
func New(mgr ctrl.Manager, o Options) *CanaryAppReconciler {
	m := o.Metrics
	if m == nil {
		m = metrics.NewPrometheus()
	}
	return &CanaryAppReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("canaryop"),
		Router:                  traffic.NewIstio(mgr.GetClient(), traffic.WithRoutePolicy(o.Routes), traffic.WithAPIReader(mgr.GetAPIReader())),
		Metrics:                 m,
		Writer:                  o.Writer,
		PodOptions:              o.PodOptions,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		WriteBackConcurrency:    o.WriteBackConcurrency,
		WriteBackTimeout:        o.WriteBackTimeout,
		PullRequestPoll:         o.PullRequestPoll,
	}
}
