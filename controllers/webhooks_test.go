package controllers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/hooks"
	"github.com/atzedevries/canaryop/internal/notify"
)

// hookTarget answers with status (200 by default) and records the
// payloads it got.
type hookTarget struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []hooks.Payload
	auth   []string
}

func newHookTarget(t *testing.T, status int32) *hookTarget {
	h := &hookTarget{}
	h.status.Store(status)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p hooks.Payload
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &p)
		h.mu.Lock()
		h.got = append(h.got, p)
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		h.mu.Unlock()
		w.WriteHeader(int(h.status.Load()))
		_, _ = io.WriteString(w, "target says "+plantedHookToken)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookTarget) payloads() []hooks.Payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hooks.Payload(nil), h.got...)
}

func (h *hookTarget) types() []v1.WebhookType {
	var out []v1.WebhookType
	for _, p := range h.payloads() {
		out = append(out, p.Type)
	}
	return out
}

func webhookTarget(g *WithT, opNS, name, address, namespaces string) {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: name, Labels: map[string]string{notify.WebhookLabel: "true"}},
		StringData: map[string]string{"address": address, "namespaces": namespaces, "token": plantedHookToken},
	}
	g.Expect(env.Client.Create(context.Background(), sec)).To(Succeed())
}

func withWebhooks(opNS string) func(*controllers.CanaryAppReconciler) {
	return func(r *controllers.CanaryAppReconciler) {
		r.Webhooks = hooks.New(env.Client, opNS, notify.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	}
}

func phaseOf(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }

// A pre-rollout webhook that does not answer 2xx holds the available canary
// at weight 0 with a reason; once it does, the canary gets traffic and is
// promoted, and the post-rollout webhook is told so.
func TestPreRolloutWebhookGatesTraffic(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	opNS := env.NewNamespace(t)
	gate, post := newHookTarget(t, http.StatusServiceUnavailable), newHookTarget(t, http.StatusOK)
	startManager(t, nil, withWebhooks(opNS))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{
			{Name: "acceptance", Type: v1.WebhookPreRollout, Metadata: map[string]string{"suite": "smoke"}},
			{Name: "report", Type: v1.WebhookPostRollout},
		}
	})
	webhookTarget(g, opNS, "acceptance", gate.URL, ns)
	webhookTarget(g, opNS, "report", post.URL, "*")

	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		haveCondition(v1.ConditionProgressing, metav1.ConditionTrue, v1.ReasonPreRolloutWebhookFailed),
		haveCondition(v1.ConditionAnalysis, metav1.ConditionUnknown, v1.ReasonPreRolloutWebhookFailed),
	))
	g.Eventually(func() int { return len(gate.payloads()) }, timeout, poll).Should(BeNumerically(">=", 2), "the hook is asked again")
	held := get(g, app)
	g.Expect(held.Status.CanaryWeight).To(Equal(int32(0)))
	g.Expect(held.Status.StepStartedAt).To(BeNil())
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Expect(condition(held, v1.ConditionProgressing).Message).To(ContainSubstring("PreRollout webhook acceptance: answered HTTP 503"))
	g.Expect(toJSON(held.Status)).NotTo(ContainSubstring(plantedHookToken), "the target's answer is not echoed")
	first := gate.payloads()[0]
	g.Expect(first.Type).To(Equal(v1.WebhookPreRollout))
	g.Expect(first.CanaryImage).To(Equal(image("v2")))
	g.Expect(first.Metadata).To(Equal(map[string]string{"suite": "smoke"}))
	g.Expect(gate.auth[0]).To(Equal("Bearer " + plantedHookToken))

	gate.status.Store(http.StatusOK)
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	g.Eventually(post.payloads, timeout, poll).Should(HaveLen(1))
	p := post.payloads()[0]
	g.Expect(p.Type).To(Equal(v1.WebhookPostRollout))
	g.Expect(p.Outcome).To(Equal(v1.EventPromoted))
	g.Expect(p.Image).To(Equal(image("v2")))
}

// A rollout webhook that answers 5xx fails the check it was called with:
// the canary rolls back, and the post-rollout webhook hears it.
func TestRolloutWebhookFailsTheCheck(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	opNS := env.NewNamespace(t)
	load := newHookTarget(t, http.StatusOK)
	startManager(t, nil, withWebhooks(opNS))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		holdAtFirstStep(a)
		a.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{{Name: "load", Type: v1.WebhookRollout}, {Name: "load", Type: v1.WebhookPostRollout}}
	})
	webhookTarget(g, opNS, "load", load.URL, ns)

	setImage(g, app, image("v3"))
	g.Eventually(load.types, timeout, poll).Should(ContainElement(v1.WebhookRollout))
	g.Expect(get(g, app).Status.Phase).To(Equal(v1.PhaseProgressing), "a 2xx rollout webhook passes")
	load.status.Store(http.StatusInternalServerError)
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(phaseOf, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionAnalysis, metav1.ConditionFalse, v1.ReasonRolloutWebhookFailed),
	))
	final := get(g, app)
	g.Expect(final.Status.FailedImages[0].Reason).To(ContainSubstring("Rollout webhook load: answered HTTP 500"))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Eventually(func() []v1.NotificationEvent {
		var out []v1.NotificationEvent
		for _, p := range load.payloads() {
			out = append(out, p.Outcome)
		}
		return out
	}, timeout, poll).Should(ContainElement(v1.EventRolledBack))
}

// A webhook target the admin scoped to another namespace is never called;
// the canary holds at weight 0 and says why.
func TestWebhookOutsideItsScopeIsNotCalled(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	opNS := env.NewNamespace(t)
	other := newHookTarget(t, http.StatusOK)
	webhookTarget(g, opNS, "team-b-tests", other.URL, "team-b")
	startManager(t, nil, withWebhooks(opNS))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{{Name: "team-b-tests", Type: v1.WebhookPreRollout}}
	})
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionAnalysis, metav1.ConditionUnknown, v1.ReasonWebhookNotAllowed))
	msg := condition(get(g, app), v1.ConditionProgressing).Message
	g.Expect(msg).To(ContainSubstring("webhook target team-b-tests does not list namespace " + ns))
	g.Expect(msg).NotTo(ContainSubstring("127.0.0.1"))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Expect(other.payloads()).To(BeEmpty())
}

// spec.notifications and spec.analysis.webhooks name the admin's objects
// and nothing else: no URL, no unknown kind or type, bounded metadata.
func TestValidationOfNotificationsAndWebhooks(t *testing.T) {
	ns := env.NewNamespace(t)
	for _, tc := range []struct {
		name   string
		mutate func(*v1.CanaryApp)
		want   string
	}{
		{"provider as a URL", func(a *v1.CanaryApp) {
			a.Spec.Notifications = []v1.Notification{{Provider: "https://hooks.slack.com/services/x"}}
		}, "spec.notifications[0].provider"},
		{"unknown event", func(a *v1.CanaryApp) {
			a.Spec.Notifications = []v1.Notification{{Provider: "team", Events: []v1.NotificationEvent{"Deleted"}}}
		}, "spec.notifications[0].events[0]"},
		{"provider twice", func(a *v1.CanaryApp) {
			a.Spec.Notifications = []v1.Notification{{Provider: "team"}, {Provider: "team"}}
		}, "Duplicate value"},
		{"webhook as a URL", func(a *v1.CanaryApp) {
			a.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{{Name: "http://load-tester.test/", Type: v1.WebhookRollout}}
		}, "spec.analysis.webhooks[0].name"},
		{"webhook type", func(a *v1.CanaryApp) {
			a.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{{Name: "load", Type: "Always"}}
		}, "spec.analysis.webhooks[0].type"},
		{"metadata value too long", func(a *v1.CanaryApp) {
			a.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{{Name: "load", Type: v1.WebhookRollout, Metadata: map[string]string{"cmd": strings.Repeat("x", 1025)}}}
		}, "webhook metadata keys must be at most 63 and values at most 1024 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			tc.mutate(app)
			err := env.Client.Create(context.Background(), app)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
	g := NewWithT(t)
	app := sample(ns, "http://prometheus.istio-system.svc:9090")
	app.Spec.Notifications = []v1.Notification{{Provider: "team-slack", Events: []v1.NotificationEvent{v1.EventRolledBack, v1.EventPromoted}}}
	app.Spec.Analysis.Webhooks = []v1.AnalysisWebhook{{Name: "load", Type: v1.WebhookRollout, Metadata: map[string]string{"cmd": "hey -z 1m http://app"}}}
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
}
