package controllers

import (
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/internal/admission"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/shard"
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
//   - Deployments, Services, VirtualServices and DestinationRules labelled
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
	return cache.Options{
		DefaultTransform: apply.TrimManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:               owned,
			&corev1.Service{}:                  owned,
			&istionetworking.VirtualService{}:  owned,
			&istionetworking.DestinationRule{}: owned,
		},
	}
}
