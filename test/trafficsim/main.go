package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Options are trafficsim's command-line settings.
type Options struct {
	Kubeconfig      string
	Namespace       string
	Apps            []string
	RPS             float64
	ErrorPathRatio  float64
	FailingVersions []string
	// Latency, VersionLatencies and VersionErrorRates: see Profiles.
	Latency           time.Duration
	VersionLatencies  []string
	VersionErrorRates []string
	Listen            string
	AddrFile          string
	PollInterval      time.Duration
	Tick              time.Duration
	Duration          time.Duration
	Seed              uint64
	TesterHeader      string
	TesterRatio       float64
}

// listFlag is a flag that may be repeated and takes comma-separated values.
type listFlag struct {
	values *[]string
	set    bool
}

func (l *listFlag) String() string {
	if l.values == nil {
		return ""
	}
	return strings.Join(*l.values, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set {
		*l.values = nil
		l.set = true
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.values = append(*l.values, v)
		}
	}
	return nil
}

// ParseOptions reads the command line.
func ParseOptions(args []string, stderr io.Writer) (Options, error) {
	o := Options{
		Kubeconfig:      os.Getenv("KUBECONFIG"),
		Namespace:       "default",
		Apps:            []string{"canaryapp-sample"},
		RPS:             20,
		ErrorPathRatio:  0.2,
		FailingVersions: []string{"v3"},
		Listen:          "127.0.0.1:0",
		PollInterval:    500 * time.Millisecond,
		Tick:            100 * time.Millisecond,
		Seed:            1,
	}
	fs := flag.NewFlagSet("trafficsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "trafficsim: a stand-in for the data plane only (Istio sidecars and the demo app's pods) in a kwok cluster.")
		fmt.Fprintln(stderr, "It simulates requests in-process by the live VirtualService or HTTPRoute weights and matches and serves istio_requests_total.")
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the cluster (default $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the apps")
	fs.Var(&listFlag{values: &o.Apps}, "app", "app (CanaryApp) name; repeatable or comma-separated")
	fs.Float64Var(&o.RPS, "rps", o.RPS, "requests per second to each app")
	fs.Float64Var(&o.ErrorPathRatio, "error-path-ratio", o.ErrorPathRatio, "share of requests to /nothello (0 sends only /hello)")
	fs.Var(&listFlag{values: &o.FailingVersions}, "failing-versions", "image tags that answer 500 to /nothello; repeatable or comma-separated")
	fs.DurationVar(&o.Latency, "latency", 20*time.Millisecond, "answer time of every version without --version-latency")
	fs.Var(&listFlag{values: &o.VersionLatencies}, "version-latency", "version=duration answer times, such as v5=800ms; repeatable or comma-separated")
	fs.Var(&listFlag{values: &o.VersionErrorRates}, "version-error-rate", "version=rate shares of requests a version answers with 500 on any path, such as v6=0.1; repeatable or comma-separated")
	fs.StringVar(&o.Listen, "listen", o.Listen, "loopback address serving /metrics (port 0 picks a free port)")
	fs.StringVar(&o.AddrFile, "addr-file", "", "file to write the actual listen address to")
	fs.DurationVar(&o.PollInterval, "poll-interval", o.PollInterval, "how often the VirtualServices and Deployments are read")
	fs.DurationVar(&o.Tick, "tick", o.Tick, "how often due requests are made")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: run until SIGINT or SIGTERM)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the random path and subset choices")
	fs.StringVar(&o.TesterHeader, "tester-header", "", "NAME=VALUE header that --tester-ratio of the requests carry (a tester matching spec.traffic.canaryMatch)")
	fs.Float64Var(&o.TesterRatio, "tester-ratio", 0, "share of requests with --tester-header")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, o.Validate()
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if len(o.Apps) == 0 {
		errs = append(errs, errors.New("--app: at least one app is needed"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace must not be empty"))
	}
	if o.RPS <= 0 || o.RPS > 10000 {
		errs = append(errs, fmt.Errorf("--rps %v: must be in (0, 10000]", o.RPS))
	}
	if o.ErrorPathRatio < 0 || o.ErrorPathRatio > 1 {
		errs = append(errs, fmt.Errorf("--error-path-ratio %v: must be in [0, 1]", o.ErrorPathRatio))
	}
	if o.PollInterval <= 0 || o.Tick <= 0 || o.Duration < 0 {
		errs = append(errs, errors.New("--poll-interval and --tick must be positive, --duration must not be negative"))
	}
	if o.TesterRatio < 0 || o.TesterRatio > 1 || o.TesterRatio > 0 && !strings.Contains(o.TesterHeader, "=") {
		errs = append(errs, fmt.Errorf("--tester-ratio %v: must be in [0, 1], and above 0 needs --tester-header NAME=VALUE", o.TesterRatio))
	}
	if err := checkLoopback(o.Listen); err != nil {
		errs = append(errs, err)
	}
	if _, err := NewProfiles(o.Latency, o.VersionLatencies, o.VersionErrorRates); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkLoopback refuses a listen address off the loopback interface: the
// simulator's counters are for a Prometheus on the same machine only.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: must be a loopback address such as 127.0.0.1:9464", addr)
	}
	return nil
}

// NewScheme knows the kinds trafficsim reads.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := istionetv1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := gatewayv1.Install(s); err != nil {
		return nil, err
	}
	return s, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	// A few GETs per app every poll: more than client-go's default of 5/s.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "trafficsim"
	return cfg, nil
}

// writeAddrFile writes addr to path through a rename, so that a script
// polling for the file never reads half of it.
func writeAddrFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".trafficsim-addr-*")
	if err != nil {
		return fmt.Errorf("writing address file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(addr + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("writing address file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing address file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing address file: %w", err)
	}
	return nil
}

// Run serves the metrics and makes the traffic until ctx ends.
func Run(ctx context.Context, o Options, reader client.Reader) error {
	log := ctrl.LoggerFrom(ctx)
	metrics := NewMetrics()
	observer := NewObserver(reader, o.Namespace, o.Apps)
	traffic := NewTraffic(o.RPS, o.ErrorPathRatio, NewResponder(o.FailingVersions), metrics, o.Seed)
	if name, value, ok := strings.Cut(o.TesterHeader, "="); ok {
		traffic.TesterRatio, traffic.TesterHeader = o.TesterRatio, http.Header{}
		traffic.TesterHeader.Set(name, value)
	}
	profiles, err := NewProfiles(o.Latency, o.VersionLatencies, o.VersionErrorRates)
	if err != nil {
		return err
	}
	traffic.Profiles = profiles

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	addr := ln.Addr().String()
	if o.AddrFile != "" {
		if err := writeAddrFile(o.AddrFile, addr); err != nil {
			ln.Close()
			return err
		}
	}
	log.Info("Serving metrics", "address", addr, "apps", o.Apps, "namespace", o.Namespace,
		"rps", o.RPS, "errorPathRatio", o.ErrorPathRatio, "failingVersions", o.FailingVersions)

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	})
	wg.Go(func() { observer.Run(ctx, o.PollInterval) })
	wg.Go(func() { traffic.Run(ctx, o.Tick, observer.Splits) })

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("stopping metrics server: %w", err)
	}
	wg.Wait()
	log.Info("Stopped")
	return runErr
}

func main() {
	o, err := ParseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trafficsim:", err)
		os.Exit(2)
	}
	log := zap.New()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	ctx = ctrl.LoggerInto(ctx, log.WithName("trafficsim"))

	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "trafficsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) error {
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	scheme, err := NewScheme()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	return Run(ctx, o, c)
}
