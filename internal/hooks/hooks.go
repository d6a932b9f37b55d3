// Package hooks calls a CanaryApp's analysis webhooks (Flagger's
// pre-rollout, rollout and post-rollout hooks, for acceptance and load
// tests). The targets are the platform admin's: Secrets in the operator's
// namespace labelled canary.atze.io/webhook=true that name the namespaces
// they serve (notify.Store); a CanaryApp only names one, never gives a URL.
//
// Pre-rollout and rollout webhooks are called during a reconcile, under the
// caller's deadline; what they answered goes to the pure planner as a
// rollout.HookResult, in fixed words (never the answer's body).
// Post-rollout webhooks are told the outcome asynchronously, with retries,
// through a notify.Dispatcher, so they never delay a rollback.
package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/rollout"
)

// Caller is the controller's seam to analysis webhooks.
type Caller interface {
	// Call calls app's webhooks of type t (PreRollout or Rollout) in
	// order under ctx and returns whether all answered 2xx.
	Call(ctx context.Context, app *v1.CanaryApp, t v1.WebhookType) rollout.HookResult
	// PostRollout queues e (a Promoted or RolledBack event) for app's
	// post-rollout webhooks and returns at once.
	PostRollout(ctx context.Context, app *v1.CanaryApp, e notify.Event)
}

// Payload is the JSON document a webhook receives.
type Payload struct {
	Type         v1.WebhookType    `json:"type"`
	Namespace    string            `json:"namespace"`
	Name         string            `json:"name"`
	Phase        v1.Phase          `json:"phase"`
	CanaryImage  string            `json:"canaryImage,omitempty"`
	StableImage  string            `json:"stableImage,omitempty"`
	CanaryWeight int32             `json:"canaryWeight"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	// Outcome (Promoted or RolledBack), Image, Reason and Message are set
	// for PostRollout.
	Outcome v1.NotificationEvent `json:"outcome,omitempty"`
	Image   string               `json:"image,omitempty"`
	Reason  string               `json:"reason,omitempty"`
	Message string               `json:"message,omitempty"`
}

// maxAnswer is read of a webhook's answer, and thrown away.
const maxAnswer = 64 << 10

// Runner calls the admin's webhook targets. It is a manager Runnable (for
// the post-rollout deliveries).
type Runner struct {
	store  *notify.Store
	client *http.Client
	post   *notify.Dispatcher
}

var _ Caller = (*Runner)(nil)

// New reads webhook targets in namespace (the operator's) through reader;
// o bounds the post-rollout deliveries.
func New(reader client.Reader, namespace string, o notify.Options) *Runner {
	store := notify.NewWebhooks(reader, namespace)
	tr := o.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Runner{store: store, client: notify.NewHTTPClient(tr), post: notify.NewDispatcher(store, nil, o)}
}

// Start runs the post-rollout deliveries until ctx ends.
func (r *Runner) Start(ctx context.Context) error { return r.post.Start(ctx) }

// NeedLeaderElection: only the leader calls webhooks.
func (r *Runner) NeedLeaderElection() bool { return true }

// Call implements Caller.
func (r *Runner) Call(ctx context.Context, app *v1.CanaryApp, t v1.WebhookType) rollout.HookResult {
	hooks := app.Spec.WebhooksOf(t)
	for _, h := range hooks {
		if res, ok := r.call(ctx, app, t, h); !ok {
			return res
		}
	}
	return rollout.HookResult{Passed: true, Message: fmt.Sprintf("%d %s webhook(s) answered 2xx", len(hooks), t)}
}

func (r *Runner) call(ctx context.Context, app *v1.CanaryApp, t v1.WebhookType, h v1.AnalysisWebhook) (rollout.HookResult, bool) {
	ep, err := r.store.Get(ctx, h.Name, app.Namespace)
	if err != nil {
		reason := v1.ReasonWebhookNotFound
		if re, ok := errors.AsType[*notify.RefusedError](err); ok {
			reason = re.Reason()
		}
		return rollout.HookResult{Reason: reason, Message: fmt.Sprintf("%s webhook not called: %s", t, err.Error())}, false
	}
	body, err := json.Marshal(payload(app, t, h))
	if err != nil {
		return rollout.HookResult{Reason: failed(t), Message: fmt.Sprintf("%s webhook %s: the request could not be built", t, h.Name)}, false
	}
	if why, _ := notify.Post(ctx, r.client, ep, body, maxAnswer); why != "" {
		return rollout.HookResult{Reason: failed(t), Message: fmt.Sprintf("%s webhook %s: %s", t, h.Name, why)}, false
	}
	return rollout.HookResult{Passed: true}, true
}

func failed(t v1.WebhookType) string {
	if t == v1.WebhookPreRollout {
		return v1.ReasonPreRolloutWebhookFailed
	}
	return v1.ReasonRolloutWebhookFailed
}

func payload(app *v1.CanaryApp, t v1.WebhookType, h v1.AnalysisWebhook) Payload {
	st := &app.Status
	return Payload{
		Type: t, Namespace: app.Namespace, Name: app.Name, Phase: st.Phase,
		CanaryImage: st.CanaryImage, StableImage: st.StableImage, CanaryWeight: st.CanaryWeight, Metadata: h.Metadata,
	}
}

// PostRollout implements Caller.
func (r *Runner) PostRollout(ctx context.Context, app *v1.CanaryApp, e notify.Event) {
	var targets []notify.Target
	for _, h := range app.Spec.WebhooksOf(v1.WebhookPostRollout) {
		p := payload(app, v1.WebhookPostRollout, h)
		p.Outcome, p.Image, p.Reason, p.Message = e.Kind, e.Image, e.Reason, e.Message
		body, err := json.Marshal(p)
		if err != nil {
			continue
		}
		targets = append(targets, notify.Target{Provider: h.Name, Body: body})
	}
	r.post.Send(ctx, e, targets)
}
