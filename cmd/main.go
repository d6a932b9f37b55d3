// Command manager runs the canaryop controller manager.
package main

import (
	"cmp"
	"crypto/tls"
	"flag"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/hooks"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/metrics/promauth"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/notify/providers"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/traffic/routers"
	"github.com/atzedevries/canaryop/internal/workload"
)

func main() {
	var (
		metricsAddr, probeAddr string
		pprofAddr              string
		leaderElect            bool
		leaderElectionNS       string
		concurrency            int
		kubeAPIQPS             float64
		kubeAPIBurst           int
		gitFlags               gitOptions
		scaleFlags             scaleOptions
		promAllowed            metrics.AllowList
		routes                 routepolicy.Policy
		trafficRouters         = routers.Flag{Names: routers.Default}
		runAsNonRoot           bool
		notifyOpts             notify.Options
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; \"0\" disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of Go's /debug/pprof endpoints (e.g. 127.0.0.1:8082), for profiling; empty: off.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the operator's namespace).")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles, "CanaryApps reconciled in parallel.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", controllers.DefaultKubeAPIQPS, "Requests per second to the Kubernetes API, per API resource, after the burst; a negative value disables client-side rate limiting (API Priority and Fairness still applies).")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", controllers.DefaultKubeAPIBurst, "Requests to the Kubernetes API, per API resource, allowed at once above --kube-api-qps; 0: twice --kube-api-qps.")
	gitFlags.bind(flag.CommandLine)
	scaleFlags.bind(flag.CommandLine)
	flag.Var(&routes, "allowed-gateways", routepolicy.FlagUsage)
	flag.Var(&trafficRouters, "traffic-routers", routers.FlagUsage)
	flag.BoolVar(&runAsNonRoot, "pods-run-as-non-root", false, "Set runAsNonRoot on the pods canaryop creates, so they meet the restricted Pod Security Standard; images must then run as a numeric non-root user.")
	flag.Var(&promAllowed, "prometheus-allowed-urls", "Comma-separated Prometheus URL prefixes (scheme, host, port, path) a CanaryApp's prometheusURL must lie under; any other URL is refused without a request. Empty: every URL (single-tenant clusters only).")
	flag.DurationVar(&notifyOpts.Timeout, "notification-timeout", 10*time.Second, "Deadline of one request to a notification provider or post-rollout webhook, answer included.")
	flag.IntVar(&notifyOpts.Attempts, "notification-attempts", 5, "Attempts to deliver one notification, with a backoff doubling from 1s; a receiver that fails them all loses that notification, never delays a canary.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if err := scaleFlags.setMemoryLimit(log); err != nil {
		log.Error(err, "Setting the Go memory limit")
		os.Exit(1)
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme, routers.AddToScheme} {
		if err := add(scheme); err != nil {
			log.Error(err, "Building the scheme")
			os.Exit(1)
		}
	}

	restConfig := ctrl.GetConfigOrDie()
	if kubeAPIBurst <= 0 && kubeAPIQPS > 0 {
		kubeAPIBurst = int(2 * kubeAPIQPS)
	}
	restConfig.QPS, restConfig.Burst = float32(kubeAPIQPS), kubeAPIBurst
	// Owned objects are cached only with canaryop's label and without other
	// managers' managedFields (see controllers.CacheOptions). Secrets are
	// read in the operator's own namespace only (the admin's Git and
	// Prometheus credentials, notification providers), from a cache: a check every few seconds per
	// app must not list Secrets from the API server.
	cacheOptions := controllers.CacheOptions()
	cacheOptions.ByObject[&corev1.Secret{}] = cache.ByObject{Namespaces: map[string]cache.Config{gitFlags.namespace(): {}}}
	// The admin's metric templates: labelled ConfigMaps of the same namespace.
	cacheOptions.ByObject[&corev1.ConfigMap{}] = cache.ByObject{
		Namespaces: map[string]cache.Config{gitFlags.namespace(): {}},
		Label:      labels.SelectorFromSet(labels.Set{controllers.LabelMetricTemplates: "true"}),
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		Metrics: metricsserver.Options{
			BindAddress: metricsAddr,
			TLSOpts:     []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		},
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "canaryop.canary.atze.io",
		LeaderElectionNamespace:       leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOptions,
	})
	if err != nil {
		log.Error(err, "Creating the manager")
		os.Exit(1)
	}

	shards, err := scaleFlags.addShards(mgr, restConfig, scheme, cmp.Or(leaderElectionNS, gitFlags.namespace()), leaderElect)
	if err != nil {
		log.Error(err, "Setting up sharding")
		os.Exit(1)
	}

	writer, err := gitFlags.writer(mgr)
	if err != nil {
		log.Error(err, "Setting up Git write-back")
		os.Exit(1)
	}
	opts := controllers.Options{
		Metrics: metrics.NewPrometheus(metrics.WithAllowList(promAllowed),
			metrics.WithCredentials(promauth.New(mgr.GetClient(), gitFlags.namespace()))),
		Routes:                  &routes,
		TrafficRouters:          trafficRouters.Names,
		MetricTemplates:         controllers.ConfigMapTemplates{Reader: mgr.GetClient(), Namespace: gitFlags.namespace()},
		Notifier:                notify.NewDispatcher(notify.NewProviders(mgr.GetClient(), gitFlags.namespace(), providers.Types()...), providers.Formats(), notifyOpts),
		Webhooks:                hooks.New(mgr.GetClient(), gitFlags.namespace(), notifyOpts),
		MaxConcurrentReconciles: concurrency,
		WriteBackConcurrency:    gitFlags.concurrency,
		WriteBackTimeout:        gitFlags.timeout,
		PullRequestPoll:         gitFlags.pullRequestPoll,
		Progressing:             scaleFlags.progressing,
		Shards:                  shards,
	}
	if writer != nil {
		opts.Writer = writer
		if gitFlags.commitStatuses {
			opts.CommitStatuses = writer
		}
	}
	if runAsNonRoot {
		opts.PodOptions = append(opts.PodOptions, workload.RunAsNonRoot())
	}
	r := controllers.New(mgr, opts)
	if err := r.SetupWithManager(mgr); err != nil {
		log.Error(err, "Setting up the CanaryApp controller")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Adding the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "Adding the readiness check")
		os.Exit(1)
	}
	if promAllowed.Len() == 0 {
		log.Info("No --prometheus-allowed-urls: CanaryApps may query any Prometheus URL from the operator's network position; set it on clusters shared by teams")
	}
	log.Info("Starting the manager", "gitWriteBack", writer != nil)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Running the manager")
		os.Exit(1)
	}
}
