package controllers_test

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

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/notify/providers"
)

const plantedHookToken = "PLANTED-notification-token-5517"

// hookReceiver records the generic webhook documents it gets; while hang
// is open it answers none of them.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	docs []map[string]any
	hang chan struct{}
}

func newHookReceiver(t *testing.T, hang bool) *hookReceiver {
	h := &hookReceiver{}
	if hang {
		h.hang = make(chan struct{})
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &doc)
		h.mu.Lock()
		h.docs = append(h.docs, doc)
		h.mu.Unlock()
		if h.hang != nil {
			select {
			case <-h.hang:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(h.Close)
	if hang {
		// Runs before h.Close: the handler must return for Close to.
		t.Cleanup(func() { close(h.hang) })
	}
	return h
}

// events are the kinds received so far.
func (h *hookReceiver) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, d := range h.docs {
		s, _ := d["event"].(string)
		out = append(out, s)
	}
	return out
}

func (h *hookReceiver) doc(kind string) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.docs {
		if d["event"] == kind {
			return d
		}
	}
	return nil
}

// notificationProvider creates the admin's provider Secret in opNS.
func notificationProvider(g *WithT, opNS, name, typ, address, namespaces string) {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: name, Labels: map[string]string{notify.ProviderLabel: "true"}},
		StringData: map[string]string{"type": typ, "address": address, "namespaces": namespaces, "token": plantedHookToken},
	}
	g.Expect(env.Client.Create(context.Background(), sec)).To(Succeed())
}

// withNotifier gives the reconciler a Dispatcher reading providers in
// opNS; the manager starts it.
func withNotifier(opNS string, o notify.Options) func(*controllers.CanaryAppReconciler) {
	return func(r *controllers.CanaryAppReconciler) {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
		r.Notifier = notify.NewDispatcher(notify.NewProviders(env.Client, opNS, providers.Types()...), providers.Formats(), o)
	}
}

// A notification endpoint that never answers holds its own worker, never
// the rollback: the receiver is stuck on the canary's first notification
// while the canary is rolled back and cleaned up.
func TestHangingNotificationDoesNotDelayRollback(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	opNS := env.NewNamespace(t)
	rx := newHookReceiver(t, true)
	notificationProvider(g, opNS, "hangs", "webhook", rx.URL, "*")
	startManager(t, nil, withNotifier(opNS, notify.Options{Timeout: time.Hour, Workers: 1, QueueSize: 1}))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		holdAtFirstStep(a)
		a.Spec.Notifications = []v1.Notification{{Provider: "hangs"}}
	})
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionNotifications, metav1.ConditionTrue, v1.ReasonNotificationsReady))

	setImage(g, app, image("v3"))
	// The only worker is now inside a request that never ends.
	g.Eventually(rx.events, timeout, poll).Should(ContainElement(string(v1.EventCanaryStarted)))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonRolledBack),
	))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v1")))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
	g.Eventually(func() []string { return eventReasons(ns) }, timeout, poll).Should(ContainElement(v1.ReasonRolledBack))
	g.Expect(rx.events()).To(Equal([]string{string(v1.EventCanaryStarted)}), "the receiver is still stuck on the first notification")
}

// An app gets its transitions, with the last check's value, from the
// provider its namespace may use; a provider scoped to another namespace
// gets nothing, and the Notifications condition says why without naming
// the provider's address.
func TestNotificationsOfARelease(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	opNS := env.NewNamespace(t)
	own, foreign := newHookReceiver(t, false), newHookReceiver(t, false)
	notificationProvider(g, opNS, "team-b-hook", "webhook", foreign.URL+"/"+plantedHookToken, "team-b,team-b-*")
	startManager(t, nil, withNotifier(opNS, notify.Options{Workers: 1}))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.Notifications = []v1.Notification{{Provider: "team-b-hook"}}
	})
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionNotifications, metav1.ConditionFalse, v1.ReasonNotificationProviderNotAllowed))
	msg := condition(get(g, app), v1.ConditionNotifications).Message
	g.Expect(msg).To(ContainSubstring("team-b-hook does not list namespace " + ns))
	g.Expect(msg).NotTo(Or(ContainSubstring("127.0.0.1"), ContainSubstring(plantedHookToken)))

	// The refused provider stays listed first: its notifications are
	// routed before those of the app's own, so once the own receiver has
	// the promotion, the refused ones were dropped.
	notificationProvider(g, opNS, "own-hook", "webhook", own.URL, ns)
	cur := get(g, app)
	base := cur.DeepCopy()
	cur.Spec.Notifications = append(cur.Spec.Notifications, v1.Notification{Provider: "own-hook",
		Events: []v1.NotificationEvent{v1.EventCanaryStarted, v1.EventWeightChanged, v1.EventPromoted}})
	cur.Spec.Image = image("v2")
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())

	g.Eventually(own.events, timeout, poll).Should(ContainElement(string(v1.EventPromoted)))
	g.Expect(own.events()).To(ContainElements(string(v1.EventCanaryStarted), string(v1.EventWeightChanged)))
	g.Expect(own.events()).NotTo(ContainElement(string(v1.EventWriteBackDone)), "only the subscribed kinds")
	promoted := own.doc(string(v1.EventPromoted))
	g.Expect(promoted).To(HaveKeyWithValue("image", image("v2")))
	g.Expect(promoted).To(HaveKeyWithValue("reason", v1.ReasonPromoted))
	g.Expect(promoted["lastCheck"]).To(HaveKeyWithValue("verdict", "Pass"))
	g.Expect(foreign.events()).To(BeEmpty(), "a provider scoped to team-b got notifications of namespace %s", ns)
	g.Expect(strings.Join(eventMessages(ns), "\n")).NotTo(ContainSubstring(plantedHookToken))
	g.Expect(toJSON(get(g, app).Status)).NotTo(ContainSubstring(plantedHookToken))
}

func eventMessages(ns string) []string {
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Note)
	}
	return out
}

// An operator built without a Notifier does not claim to notify.
func TestNotificationsWithoutANotifier(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	_, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.Notifications = []v1.Notification{{Provider: "team-slack"}}
	})
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionNotifications, metav1.ConditionFalse, v1.ReasonNotificationProviderNotFound))
}
