package hooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/hooks"
	"github.com/atzedevries/canaryop/internal/notify"
)

const (
	operatorNS = "canaryop-system"
	planted    = "PLANTED-hook-token-0451"
)

type target struct {
	*httptest.Server
	mu    sync.Mutex
	names []string
}

// newTarget answers every request with status and records the metadata
// "step" of each payload.
func newTarget(t *testing.T, status int) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p hooks.Payload
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &p)
		tg.mu.Lock()
		tg.names = append(tg.names, p.Metadata["step"])
		tg.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "answer with "+planted)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) calls() []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]string(nil), tg.names...)
}

func secret(name, address, namespaces string) client.Object {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: name, Labels: map[string]string{notify.WebhookLabel: "true"}},
		Data:       map[string][]byte{"address": []byte(address), "namespaces": []byte(namespaces), "token": []byte(planted)},
	}
}

func runner(t *testing.T, objs ...client.Object) *hooks.Runner {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return hooks.New(fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build(), operatorNS, notify.Options{})
}

func app(hs ...v1.AnalysisWebhook) *v1.CanaryApp {
	a := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	a.Spec.Analysis = &v1.AnalysisSpec{Webhooks: hs}
	a.Status.CanaryImage = "ghcr.io/acme/web:v2"
	return a
}

func hook(name string, t v1.WebhookType, step string) v1.AnalysisWebhook {
	return v1.AnalysisWebhook{Name: name, Type: t, Metadata: map[string]string{"step": step}}
}

// Webhooks of the type asked for are called in order until one does not
// answer 2xx; the result names it in fixed words, never its answer.
func TestCallStopsAtTheFirstFailure(t *testing.T) {
	ok, bad := newTarget(t, http.StatusOK), newTarget(t, http.StatusBadGateway)
	r := runner(t, secret("ok", ok.URL, "shop"), secret("bad", bad.URL, "shop"))
	a := app(hook("ok", v1.WebhookPreRollout, "1"), hook("ok", v1.WebhookRollout, "not this type"),
		hook("bad", v1.WebhookPreRollout, "2"), hook("ok", v1.WebhookPreRollout, "3"))

	res := r.Call(context.Background(), a, v1.WebhookPreRollout)
	if res.Passed || res.Reason != v1.ReasonPreRolloutWebhookFailed || res.Message != "PreRollout webhook bad: answered HTTP 502" {
		t.Fatalf("Call = %+v", res)
	}
	if got := append(ok.calls(), bad.calls()...); strings.Join(got, ",") != "1,2" {
		t.Errorf("calls %v, want 1 then 2 and nothing after the failure", got)
	}
	if res := r.Call(context.Background(), a, v1.WebhookRollout); !res.Passed {
		t.Errorf("rollout webhooks: %+v", res)
	}
}

// A target that never answers fails within the caller's deadline.
func TestCallHasTheCallersDeadline(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	r := runner(t, secret("hang", hang.URL, "*"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := r.Call(ctx, app(hook("hang", v1.WebhookRollout, "")), v1.WebhookRollout)
	if res.Passed || res.Reason != v1.ReasonRolloutWebhookFailed || res.Message != "Rollout webhook hang: no answer before the deadline" {
		t.Errorf("Call = %+v", res)
	}
}

// A target outside its namespace scope, or none, is never called.
func TestCallRefusesTargetsOutsideTheirScope(t *testing.T) {
	other := newTarget(t, http.StatusOK)
	r := runner(t, secret("team-b", other.URL+"/"+planted, "team-b"))
	for name, want := range map[string]string{"team-b": v1.ReasonWebhookNotAllowed, "missing": v1.ReasonWebhookNotFound} {
		res := r.Call(context.Background(), app(hook(name, v1.WebhookPreRollout, "")), v1.WebhookPreRollout)
		if res.Passed || res.Reason != want {
			t.Errorf("%s: %+v, want %s", name, res, want)
		}
		if strings.Contains(res.Message, planted) || strings.Contains(res.Message, "127.0.0.1") {
			t.Errorf("%s: message names the target: %s", name, res.Message)
		}
	}
	if n := len(other.calls()); n != 0 {
		t.Errorf("team B's target got %d calls from namespace shop", n)
	}
}
