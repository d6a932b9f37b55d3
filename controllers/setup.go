package controllers

import (
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/internal/admission"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/hooks"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/shard"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/traffic/routers"
	"github.com/atzedevries/canaryop/internal/workload"
)

// Options are what one deployment of the reconciler chooses; everything
// else comes from the manager. cmd/ and the envtest suites build the
// reconciler through New, so both run the same wiring.
type Options struct {
	// Writer writes outcomes back to Git; nil disables write-back.
	Writer gitops.Writer
	// CommitStatuses reports each canary's verdict as a GitHub commit
	// status on the commit of its change (Argo CD-managed apps); nil
	// reports none. *gitops.GitWriter implements it.
	CommitStatuses gitops.CommitStatuses
	// Metrics runs the analysis queries; nil is a Prometheus provider with
	// no allow-list and no credentials.
	Metrics metrics.Provider
	// Routes is the admin's route policy; nil allows only each app's own
	// Service host on the mesh.
	Routes *routepolicy.Policy
	// PodOptions are the admin's pod defaults.
	PodOptions []workload.Option
	// TrafficRouters are the traffic routers to run (package routers);
	// nil runs every registered one. Names routers does not know are not
	// run (cmd refuses them at flag parsing).
	TrafficRouters []v1.TrafficProvider
	// MetricTemplates are the admin's named queries; nil has none.
	MetricTemplates MetricTemplates
	// Notifier sends transitions to the admin's notification providers
	// (notify.Dispatcher, started with the manager); nil sends none.
	Notifier notify.Notifier
	// Webhooks calls the admin's webhook targets (hooks.Runner, started
	// with the manager); nil has none.
	Webhooks hooks.Caller
	// MaxConcurrentReconciles, WriteBackConcurrency, WriteBackTimeout and
	// PullRequestPoll: see CanaryAppReconciler; zero means the default.
	MaxConcurrentReconciles int
	WriteBackConcurrency    int
	WriteBackTimeout        time.Duration
	PullRequestPoll         time.Duration
	// Progressing caps the canaries progressing at once (admin flags
	// --max-progressing-canaries and --max-progressing-canaries-per-namespace);
	// zero values are no cap.
	Progressing admission.Limits
	// Shards, when set, shares the apps with other replicas on Leases: this
	// replica reconciles (and writes back) only the apps of the shards it
	// holds. The caller runs it (mgr.Add). Nil: every app, as with leader
	// election.
	Shards *shard.Manager
}

// New builds the reconciler on mgr's clients: the cached client for owned
// objects, the API reader for CanaryApps and for re-reads before a create.
func New(mgr ctrl.Manager, o Options) *CanaryAppReconciler {
	m := o.Metrics
	if m == nil {
		m = metrics.NewPrometheus()
	}
	providers := routers.All()
	if o.TrafficRouters != nil {
		providers = slices.DeleteFunc(providers, func(p traffic.Provider) bool { return !slices.Contains(o.TrafficRouters, p.Name) })
	}
	return &CanaryAppReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("canaryop"),
		Router:                  traffic.NewRouters(traffic.Deps{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Policy: o.Routes}, providers),
		Watches:                 routers.Owned(providers),
		Metrics:                 m,
		Writer:                  o.Writer,
		CommitStatuses:          o.CommitStatuses,
		PodOptions:              o.PodOptions,
		MetricTemplates:         o.MetricTemplates,
		Notifier:                o.Notifier,
		Webhooks:                o.Webhooks,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		WriteBackConcurrency:    o.WriteBackConcurrency,
		WriteBackTimeout:        o.WriteBackTimeout,
		PullRequestPoll:         o.PullRequestPoll,
		unchanged:               apply.NewMemo(),
		gate:                    newGate(o.Progressing),
		shards:                  o.Shards,
	}
}

// Client-side rate limits of the operator's API clients (cmd/main.go's
// --kube-api-qps and --kube-api-burst); client-go applies them per API
// resource client. The default is no client-side limit, as
// controller-runtime's GetConfig gives it: the workers already bound how
// many requests are in flight (a reconcile sends one at a time), the API
// server's Priority and Fairness shares it among clients, and a limit per
// resource delays a restart, which reads every CanaryApp once uncached
// (10,000 apps at 100 QPS: 100 s before the last one is looked at). In
// BenchmarkReconcileTuning 100 QPS (burst 200) cost nothing at 100 apps and
// 20 QPS (burst 30) made a round four to six times slower (BENCHMARKS.md).
const (
	DefaultKubeAPIQPS   = -1
	DefaultKubeAPIBurst = 0
)

// DefaultMaxConcurrentReconciles is how many CanaryApps are reconciled in
// parallel unless the admin says otherwise (--max-concurrent-reconciles).
// With 10ms per API request, 16 workers initialise 100 apps 30% faster
// than 4 and run their canaries 15-20% faster; 32 gain nothing more
// (BenchmarkReconcileTuning, BENCHMARKS.md). Reconciles mostly wait for the
// API server, so workers are cheap.
const DefaultMaxConcurrentReconciles = 16

// CacheOptions is the manager cache the reconciler is built for; cmd and
// the envtest suites start their managers with it, so both cache alike.
// It holds only what the reconciler reads:
//
//   - Deployments, Services and the kinds the traffic routers own
//     (routers.Owned: VirtualServices, DestinationRules, HTTPRoutes) labelled
//     app.kubernetes.io/managed-by=canaryop, not every one in the cluster.
//     canaryop has set that label on every object it created since its
//     first release (workload.Labels), so an upgraded operator sees all of
//     them. An object without it is not in the cache: Apply then tries to
//     create it, meets AlreadyExists and reads it uncached, so a foreign
//     one is refused as before and an own one whose label someone removed
//     is applied over, which puts the label back (the Deployments the
//     plan reads are read uncached when status says they exist).
//   - managedFields: canaryop's own entries only (apply.TrimManagedFields),
//     which is what apply.Unchanged compares.
//
// A caller may add entries to ByObject (cmd limits Secrets to the
// operator's namespace).
func CacheOptions() cache.Options {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{workload.LabelManagedBy: workload.ManagedBy})}
	opts := cache.Options{
		DefaultTransform: apply.TrimManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:                     owned,
			&corev1.Service{}:                        owned,
			&autoscalingv2.HorizontalPodAutoscaler{}: owned,
			&policyv1.PodDisruptionBudget{}:          owned,
		},
	}
	for _, obj := range routers.Owned(routers.All()) {
		opts.ByObject[obj] = owned
	}
	return opts
}
