package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	imageV1 = "atzedevries/go-status-code-server:v1"
	imageV2 = "atzedevries/go-status-code-server:v2"
	probe   = "app-0"
)

type bench struct {
	c  config
	cl client.Client
	// apps is a watch-fed cache of the CanaryApps that countReady counts
	// from: listing 10,000 apps from the API server every half second kept
	// it busy enough to slow the run it measures.
	apps    cache.Cache
	errors  atomic.Int64 // the probe app's bench_errors gauge
	srv     *http.Server
	target  string
	results []string
}

func newBench(ctx context.Context, c config) (*bench, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme, istionetworking.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	apps, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	if _, err := apps.GetInformer(ctx, &v1.CanaryApp{}); err != nil {
		return nil, err
	}
	go func() { _ = apps.Start(ctx) }()
	if !apps.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the CanaryApp cache did not sync")
	}
	b := &bench{c: c, cl: cl, apps: apps}
	return b, b.serveErrors()
}

// serveErrors serves bench_errors{app=...} on 127.0.0.1 and registers it
// with Prometheus (file_sd).
func (b *bench) serveErrors() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE bench_errors gauge\nbench_errors{app=%q} %d\n", probe, b.errors.Load())
	})}
	go func() { _ = b.srv.Serve(l) }()
	b.target = filepath.Join(b.c.targetsDir, "benchscale.json")
	t, _ := json.Marshal([]map[string]any{{"targets": []string{l.Addr().String()}, "labels": map[string]string{"job": "benchscale"}}})
	return os.WriteFile(b.target, t, 0o644)
}

func (b *bench) close() {
	_ = os.Remove(b.target)
	_ = b.srv.Close()
}

func (b *bench) note(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "benchscale:", line)
	b.results = append(b.results, line)
}

func (b *bench) report() {
	fmt.Printf("\n### N = %d\n\n", b.c.n)
	for _, r := range b.results {
		fmt.Println("- " + r)
	}
}

func (b *bench) ns(i int) string { return fmt.Sprintf("bench-%d", i/b.c.perNS) }

func (b *bench) app(i int) *v1.CanaryApp {
	name := fmt.Sprintf("app-%d", i)
	q := `bench_errors{app="none"} > 0`
	if name == probe {
		q = fmt.Sprintf(`bench_errors{app=%q} > 0`, probe)
	}
	return &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.ns(i), Name: name},
		Spec: v1.CanaryAppSpec{Image: imageV1, ImageListenPort: 8080, Replicas: 1, TestReplicas: 1,
			PrometheusQuery: q, PrometheusURL: b.c.promURL,
			Analysis: &v1.AnalysisSpec{Interval: &metav1.Duration{Duration: 3 * time.Second}, CheckInterval: &metav1.Duration{Duration: time.Second},
				StepWeight: ptr(int32(25))}},
	}
}

// parallel runs f(0..n-1) on the program's workers; the first error wins.
func (b *bench) parallel(n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for range b.c.workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// countReady counts apps whose Ready condition is True with stable image.
func (b *bench) countReady(ctx context.Context, image string) (int, error) {
	var list v1.CanaryAppList
	if err := b.apps.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, err
	}
	n := 0
	for _, a := range list.Items {
		if meta.IsStatusConditionTrue(a.Status.Conditions, v1.ConditionReady) && a.Status.StableImage == image && a.Status.CanaryImage == "" {
			n++
		}
	}
	return n, nil
}

func (b *bench) waitReady(ctx context.Context, image string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := b.countReady(ctx, image)
		if err == nil && n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d apps Ready on %s after %s", n, want, image, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (b *bench) createNamespaces(ctx context.Context) error {
	for i := 0; i < b.c.n; i += b.c.perNS {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.ns(i)}}
		if err := b.cl.Create(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
