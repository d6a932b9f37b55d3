package notify_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/rollout"
)

func rolloutEvent(reason, msg string) rollout.Event {
	return rollout.Event{Warning: reason == v1.ReasonRolledBack, Reason: reason, Message: msg}
}

// Each provider type gets its own payload, with the reason, the last
// check's value and the app, the admin's token as a header, and no secret
// in the body.
func TestDeliversEachProviderType(t *testing.T) {
	slackRx, teamsRx, hookRx := newReceiver(t), newReceiver(t), newReceiver(t)
	reader := fakeReader(t,
		providerSecret("team-slack", map[string]string{"type": "slack", "address": slackRx.URL + "/services/T0/B0/" + planted, "namespaces": "shop"}),
		providerSecret("team-teams", map[string]string{"type": "Teams", "address": teamsRx.URL + "/workflows/" + planted, "namespaces": "sh*"}),
		providerSecret("incidents", map[string]string{"type": "webhook", "address": hookRx.URL + "/hook", "namespaces": "*",
			"token": planted, "headers": "X-Team: payments\n"}),
	)
	d := startDispatcher(t, reader, notify.Options{})
	a := app("shop", v1.Notification{Provider: "team-slack"}, v1.Notification{Provider: "team-teams", Events: []v1.NotificationEvent{v1.EventRolledBack}},
		v1.Notification{Provider: "incidents"})
	if err := d.Check(context.Background(), a); err != nil {
		t.Fatalf("Check: %v", err)
	}
	d.Notify(context.Background(), a, rolledBack(t, a))

	slack := slackRx.wait(t, 1)[0]
	teams := teamsRx.wait(t, 1)[0]
	hook := hookRx.wait(t, 1)[0]
	for name, r := range map[string]request{"slack": slack, "teams": teams, "webhook": hook} {
		if bytes.Contains(r.body, []byte(planted)) || bytes.Contains(r.body, []byte("/services/")) {
			t.Errorf("%s: body carries a secret: %s", name, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
	if got := hook.header.Get("Authorization"); got != "Bearer "+planted {
		t.Errorf("webhook Authorization = %q", got)
	}
	if got := hook.header.Get("X-Team"); got != "payments" {
		t.Errorf("webhook X-Team = %q", got)
	}
	if slack.header.Get("Authorization") != "" {
		t.Errorf("slack got an Authorization header the admin did not set")
	}

	s := string(slack.body)
	for _, want := range []string{`"text":"RolledBack: shop/web: Rolled back ghcr.io/acme/web:v3`, `:red_circle: *RolledBack: shop/web*`,
		`*Reason*\nRolledBack`, `*Last check*\n5 (Fail) at weight 25`, `*Image*\nghcr.io/acme/web:v3`, `"type":"section"`} {
		if !strings.Contains(s, want) {
			t.Errorf("slack body lacks %q: %s", want, s)
		}
	}
	card := decode(t, teams.body)
	if card["type"] != "message" {
		t.Errorf("teams type = %v", card["type"])
	}
	att := card["attachments"].([]any)[0].(map[string]any)
	if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("teams contentType = %v", att["contentType"])
	}
	body := att["content"].(map[string]any)["body"].([]any)
	if title := body[0].(map[string]any)["text"]; title != "RolledBack: shop/web" {
		t.Errorf("teams title = %v", title)
	}
	if !strings.Contains(string(teams.body), `{"title":"Last check","value":"5 (Fail) at weight 25"}`) {
		t.Errorf("teams facts lack the last check: %s", teams.body)
	}
	p := decode(t, hook.body)
	for k, want := range map[string]any{"event": "RolledBack", "severity": "warning", "reason": "RolledBack", "namespace": "shop", "name": "web",
		"image": "ghcr.io/acme/web:v3", "stableImage": "ghcr.io/acme/web:v2", "time": "2026-12-01T12:00:00Z"} {
		if p[k] != want {
			t.Errorf("webhook %s = %v, want %v", k, p[k], want)
		}
	}
	if lc := p["lastCheck"].(map[string]any); lc["value"] != "5" || lc["verdict"] != "Fail" || lc["weight"] != float64(25) {
		t.Errorf("webhook lastCheck = %v", lc)
	}
}

// A receiver that answers 503 is retried with backoff until it answers 2xx;
// one that answers 400 is not retried.
func TestRetries(t *testing.T) {
	flaky, broken := newReceiver(t, 503, 500, 200), newReceiver(t, 400, 200)
	reader := fakeReader(t,
		providerSecret("flaky", map[string]string{"type": "webhook", "address": flaky.URL, "namespaces": "retry"}),
		providerSecret("broken", map[string]string{"type": "webhook", "address": broken.URL, "namespaces": "retry"}),
		providerSecret("marker", map[string]string{"type": "webhook", "address": broken.URL + "/marker", "namespaces": "retry"}),
	)
	d := startDispatcher(t, reader, notify.Options{Workers: 1, Attempts: 4})
	a := app("retry", v1.Notification{Provider: "flaky"}, v1.Notification{Provider: "broken"})
	d.Notify(context.Background(), a, rolledBack(t, a))

	got := flaky.wait(t, 3)
	for i := 1; i < len(got); i++ {
		if !bytes.Equal(got[i].body, got[0].body) {
			t.Errorf("attempt %d sent another body", i+1)
		}
	}
	broken.wait(t, 1)
	// The next event to the same receiver proves the 400 was not retried:
	// "broken" has one worker, so a retry would come before it.
	a.Spec.Notifications = []v1.Notification{{Provider: "marker"}}
	d.Notify(context.Background(), a, rolledBack(t, a))
	if r := broken.wait(t, 2); r[1].path != "/marker" {
		t.Errorf("second request to the broken receiver went to %s: the 400 was retried", r[1].path)
	}
	waitFor(t, func() bool { return counter(t, "retry", "flaky", "RolledBack", "sent") == 1 })
	waitFor(t, func() bool { return counter(t, "retry", "broken", "RolledBack", "failed") == 1 })
	if n := flaky.count(); n != 3 {
		t.Errorf("flaky receiver got %d requests, want 3", n)
	}
}

// A provider that does not serve the app's namespace sends nothing, and
// Check says why, naming no value of the Secret.
func TestProviderOutsideItsScopeSendsNothing(t *testing.T) {
	teamB, own := newReceiver(t), newReceiver(t)
	reader := fakeReader(t,
		providerSecret("team-b-slack", map[string]string{"type": "slack", "address": teamB.URL + "/" + planted, "namespaces": "team-b,team-b-*"}),
		providerSecret("unscoped", map[string]string{"type": "slack", "address": teamB.URL + "/" + planted}),
		providerSecret("evil-hook", map[string]string{"type": "webhook", "address": own.URL, "namespaces": "evil"}),
	)
	d := startDispatcher(t, reader, notify.Options{})
	a := app("evil", v1.Notification{Provider: "team-b-slack"})
	err := d.Check(context.Background(), a)
	var refused *notify.RefusedError
	if !errors.As(err, &refused) || refused.Reason() != v1.ReasonNotificationProviderNotAllowed {
		t.Fatalf("Check = %v, want NotificationProviderNotAllowed", err)
	}
	if strings.Contains(err.Error(), planted) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("refusal names the address: %v", err)
	}
	d.Notify(context.Background(), a, rolledBack(t, a))
	a.Spec.Notifications = []v1.Notification{{Provider: "unscoped"}}
	if err := d.Check(context.Background(), a); !errors.As(err, &refused) || refused.Reason() != v1.ReasonNotificationProviderNotAllowed {
		t.Errorf("a provider without namespaces: Check = %v, want NotificationProviderNotAllowed", err)
	}
	d.Notify(context.Background(), a, rolledBack(t, a))
	// Events are routed in order: once the app's own provider got the
	// third, the first two were refused.
	a.Spec.Notifications = []v1.Notification{{Provider: "evil-hook"}}
	d.Notify(context.Background(), a, rolledBack(t, a))
	own.wait(t, 1)
	if n := teamB.count(); n != 0 {
		t.Fatalf("team B's receiver got %d requests from namespace evil", n)
	}
	if c := counter(t, "evil", "team-b-slack", "RolledBack", "refused"); c != 1 {
		t.Errorf("refused counter = %v", c)
	}
}

// An app gets only the kinds it subscribed to.
func TestSubscribedEventsOnly(t *testing.T) {
	rx := newReceiver(t)
	reader := fakeReader(t, providerSecret("hook", map[string]string{"type": "webhook", "address": rx.URL, "namespaces": "subs"}))
	d := startDispatcher(t, reader, notify.Options{Workers: 1})
	a := app("subs", v1.Notification{Provider: "hook", Events: []v1.NotificationEvent{v1.EventPromoted, v1.EventRolledBack}})
	d.Notify(context.Background(), a, event(t, a, v1.ReasonAnalysing, "Routing 25% of traffic to canary ghcr.io/acme/web:v3"))
	d.Notify(context.Background(), a, rolledBack(t, a))
	if got := decode(t, rx.wait(t, 1)[0].body)["event"]; got != "RolledBack" {
		t.Errorf("first notification is %v, want RolledBack (WeightChanged is not subscribed)", got)
	}
}

// Notify never waits for a receiver: with one that never answers, a burst
// far beyond the queues returns, and the overflow is counted as dropped.
func TestHangingReceiverNeverBlocksNotify(t *testing.T) {
	hang := make(chan struct{})
	rx := newReceiver(t)
	rx.Config.Handler = blockUntil(hang)
	t.Cleanup(func() { close(hang) })
	reader := fakeReader(t, providerSecret("hang", map[string]string{"type": "webhook", "address": rx.URL, "namespaces": "hang"}))
	d := startDispatcher(t, reader, notify.Options{QueueSize: 2, Workers: 1})
	a := app("hang", v1.Notification{Provider: "hang"})
	e := rolledBack(t, a)
	for range 1000 {
		d.Notify(context.Background(), a, e)
	}
	waitFor(t, func() bool { return counter(t, "hang", "hang", "RolledBack", "dropped") > 0 })
}
