package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/internal/testenv"
	"github.com/atzedevries/canaryop/internal/traffic"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logSink), zap.Level(zapcore.Level(-10))))
	testenv.Main(m, &env)
}

// logSink receives the controller's logs at every verbosity: a test that
// checks them sets a buffer; otherwise they are dropped, or printed with
// CANARYOP_TEST_LOG=1.
var logSink = &switchWriter{}

type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.w != nil:
		return s.w.Write(p)
	case os.Getenv("CANARYOP_TEST_LOG") != "":
		return os.Stderr.Write(p)
	}
	return len(p), nil
}

// fakeProm speaks Prometheus' /api/v1/query: an empty vector while healthy,
// one sample while bad, an error while down.
type fakeProm struct {
	*httptest.Server
	mode    atomic.Value // "good", "bad", "down"
	queries atomic.Int64
}

func newFakeProm(t testing.TB) *fakeProm {
	p := &fakeProm{}
	p.mode.Store("good")
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.queries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch p.mode.Load().(string) {
		case "bad":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"destination_service_name":"app"},"value":[1700000000,"5"]}]}}`)
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"error","errorType":"unavailable","error":"down for the test"}`)
		default:
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *fakeProm) set(mode string) { p.mode.Store(mode) }

// manager runs one controller manager for a test; stop() ends it and waits.
type manager struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startManager(t testing.TB, writer gitops.Writer, opts ...func(*controllers.CanaryAppReconciler)) *manager {
	t.Helper()
	return startManagerWith(t, managerConfig(), writer, opts...)
}

// managerConfig reaches envtest with the operator's default client rate
// limits (cmd/main.go), not envtest's own 1000 QPS.
func managerConfig() *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = controllers.DefaultKubeAPIQPS, controllers.DefaultKubeAPIBurst
	return cfg
}

// startManagerWith starts a manager on cfg with the operator's cache
// options (controllers.CacheOptions) and the reconciler from
// controllers.New, changed by opts.
func startManagerWith(t testing.TB, cfg *rest.Config, writer gitops.Writer, opts ...func(*controllers.CanaryAppReconciler)) *manager {
	t.Helper()
	return startManagerOpts(t, cfg, controllers.Options{Writer: writer}, opts...)
}

// startManagerOpts is startManagerWith for a reconciler built from o.
func startManagerOpts(t testing.TB, cfg *rest.Config, o controllers.Options, opts ...func(*controllers.CanaryAppReconciler)) *manager {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr(true)},
		Cache:                  controllers.CacheOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := controllers.New(mgr, o)
	for _, o := range opts {
		o(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *manager) stop() {
	m.cancel()
	<-m.done
}

// kubelet stands in for the controllers envtest does not run: it marks
// Deployments as rolled out and available, when ready(d) allows it.
func kubelet(t testing.TB, ns string, ready func(d *appsv1.Deployment) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var list appsv1.DeploymentList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				continue
			}
			for i := range list.Items {
				d := &list.Items[i]
				if ready != nil && !ready(d) {
					continue
				}
				n := int32(1)
				if d.Spec.Replicas != nil {
					n = *d.Spec.Replicas
				}
				if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == n && d.Status.UpdatedReplicas == n {
					continue
				}
				base := d.DeepCopy()
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
					Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
				_ = env.Client.Status().Patch(ctx, d, client.MergeFrom(base))
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// sample is the original README's manifest, with short analysis intervals.
func sample(ns, promURL string) *v1.CanaryApp {
	return &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: "canaryapp-sample", Namespace: ns},
		Spec: v1.CanaryAppSpec{
			Image:           "atzedevries/go-status-code-server:v1",
			ImageListenPort: 8088,
			Replicas:        2,
			TestReplicas:    1,
			PrometheusQuery: `increase(istio_requests_total{destination_service_name="canaryapp-sample",response_code=~"5.*"}[20s]) > 2`,
			PrometheusURL:   promURL,
			Analysis: &v1.AnalysisSpec{
				Interval:      &metav1.Duration{Duration: time.Second},
				CheckInterval: &metav1.Duration{Duration: time.Second},
				StepWeight:    ptr(int32(25)),
			},
		},
	}
}

// holdAtFirstStep keeps a canary at its first weight until a check fails,
// so a loaded machine cannot promote it before the test turns it bad.
func holdAtFirstStep(a *v1.CanaryApp) {
	a.Spec.Analysis.Interval = &metav1.Duration{Duration: time.Hour}
}

func ptr[T any](v T) *T { return &v }

func image(tag string) string { return "atzedevries/go-status-code-server:" + tag }

func get(g Gomega, app *v1.CanaryApp) *v1.CanaryApp {
	out := &v1.CanaryApp{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), out)).To(Succeed())
	return out
}

func setImage(g Gomega, app *v1.CanaryApp, img string) {
	cur := get(g, app)
	base := cur.DeepCopy()
	cur.Spec.Image = img
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
}

func deployment(g Gomega, ns, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d)
	if err != nil {
		return nil
	}
	return d
}

func containerImage(d *appsv1.Deployment) string {
	if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// canaryWeight reads the canary weight from the live VirtualService.
func canaryWeight(g Gomega, ns, name string) int32 {
	vs := &istionetworking.VirtualService{}
	g.Expect(env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, vs)).To(Succeed())
	w, ok := traffic.CanaryWeight(&vs.Spec)
	g.Expect(ok).To(BeTrue(), "the VirtualService routes to the canary subset")
	return w
}

func condition(app *v1.CanaryApp, t string) *metav1.Condition {
	for i := range app.Status.Conditions {
		if app.Status.Conditions[i].Type == t {
			return &app.Status.Conditions[i]
		}
	}
	return nil
}

func haveCondition(t string, s metav1.ConditionStatus, reason string) OmegaMatcher {
	return WithTransform(func(app *v1.CanaryApp) string {
		c := condition(app, t)
		if c == nil {
			return "<none>"
		}
		return string(c.Status) + "/" + c.Reason
	}, Equal(string(s)+"/"+reason))
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
