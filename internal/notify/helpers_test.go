package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/notify/providers"
	"github.com/atzedevries/canaryop/internal/opmetrics"
)

const operatorNS = "canaryop-system"

// planted is a token no request body, log or error may carry.
const planted = "xoxb-PLANTED-SECRET-TOKEN"

// receiver records the requests it gets; status answers each (200 when
// nil or exhausted).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	status   []int
	got      chan struct{}
}

type request struct {
	header http.Header
	body   []byte
	path   string
}

func newReceiver(t *testing.T, status ...int) *receiver {
	r := &receiver{status: status, got: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.requests)
		r.requests = append(r.requests, request{header: req.Header.Clone(), body: body, path: req.URL.Path})
		code := http.StatusOK
		if n < len(r.status) {
			code = r.status[n]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "receiver says "+planted) // never echoed anywhere
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

// wait blocks until the receiver got n requests in all.
func (r *receiver) wait(t *testing.T, n int) []request {
	t.Helper()
	for {
		r.mu.Lock()
		if len(r.requests) >= n {
			out := append([]request(nil), r.requests...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-time.After(30 * time.Second):
			t.Fatalf("receiver got %d of %d requests", len(r.requests), n)
		}
	}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func providerSecret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: name, Labels: map[string]string{notify.ProviderLabel: "true"}}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func fakeReader(t *testing.T, objs ...client.Object) client.Reader { return fakeReaderB(t, objs...) }

func fakeReaderB(t testing.TB, objs ...client.Object) client.Reader {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

// startDispatcher runs a Dispatcher with fast retries until the test ends.
func startDispatcher(t *testing.T, reader client.Reader, o notify.Options) *notify.Dispatcher {
	t.Helper()
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond
	}
	d := notify.NewDispatcher(notify.NewProviders(reader, operatorNS, providers.Types()...), providers.Formats(), o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func app(ns string, subs ...v1.Notification) *v1.CanaryApp {
	a := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	a.Spec.Notifications = subs
	a.Status.StableImage = "ghcr.io/acme/web:v2"
	a.Status.FailedImages = []v1.FailedImage{{Image: "ghcr.io/acme/web:v3", Reason: "AnalysisFailed: 1 failed check(s)"}}
	a.Status.Checks = []v1.AnalysisCheck{{Image: "ghcr.io/acme/web:v3", Weight: 25, Value: "5", Verdict: v1.CheckFail}}
	a.Status.WriteBack = &v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, Image: "ghcr.io/acme/web:v2", FailedImage: "ghcr.io/acme/web:v3", Pending: true}
	return a
}

func rolledBack(t *testing.T, a *v1.CanaryApp) notify.Event {
	t.Helper()
	return event(t, a, v1.ReasonRolledBack, "Rolled back ghcr.io/acme/web:v3 to ghcr.io/acme/web:v2: 1 failed check(s) at weight 25, last value 5")
}

func event(t *testing.T, a *v1.CanaryApp, reason, msg string) notify.Event {
	t.Helper()
	e, ok := notify.NewEvent(a, rolloutEvent(reason, msg), time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	if !ok {
		t.Fatalf("%s is of no kind", reason)
	}
	return e
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

// counter reads canaryop_notifications_total for one series.
func counter(t *testing.T, ns, provider, kind, result string) float64 {
	t.Helper()
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"namespace": ns, "name": "web", "provider": provider, "event": kind, "result": result}
	for _, mf := range mfs {
		if mf.GetName() != opmetrics.Notifications {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsAre(m, want) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelsAre(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}
