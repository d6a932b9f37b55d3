package rollout

import (
	"testing"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func withHooks(hooks ...v1.AnalysisWebhook) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		a.Spec.Analysis = &v1.AnalysisSpec{Webhooks: hooks}
	}
}

func waiting(mutate ...func(*v1.CanaryApp)) *v1.CanaryApp {
	return app("app:v2", func(a *v1.CanaryApp) {
		inCanary(0, 0)(a)
		a.Status.StepStartedAt = nil
		for _, m := range mutate {
			m(a)
		}
	})
}

var preHook = v1.AnalysisWebhook{Name: "acceptance", Type: v1.WebhookPreRollout}

// A pre-rollout webhook holds an available canary at weight 0 until it
// answers 2xx; each attempt is recorded as a check at weight 0.
func TestPreRollout(t *testing.T) {
	a := waiting(withHooks(preHook))
	in := Input{Now: t0, App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2}
	if !PreRolloutDue(in) {
		t.Fatal("pre-rollout not due for an available canary without traffic")
	}
	if PreRolloutDue(Input{Now: t0, App: a, Analysis: in.Analysis, Primary: primaryV1, Canary: Deployment{Exists: true, Image: "app:v2"}}) {
		t.Error("pre-rollout due before the canary is available")
	}
	if b := waiting(); PreRolloutDue(Input{Now: t0, App: b, Analysis: b.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2}) {
		t.Error("pre-rollout due for an app without pre-rollout webhooks")
	}

	// Not called (not due): hold, nothing recorded.
	out := Plan(in)
	if out.Weight != 0 || out.Status.StepStartedAt != nil || len(out.Status.Checks) != 0 || out.RequeueAfter == 0 {
		t.Fatalf("without an answer: weight %d, step %v, checks %v, requeue %v", out.Weight, out.Status.StepStartedAt, out.Status.Checks, out.RequeueAfter)
	}

	in.PreRollout = &HookResult{Reason: v1.ReasonPreRolloutWebhookFailed, Message: "pre-rollout webhook acceptance answered HTTP 503"}
	out = Plan(in)
	if out.Weight != 0 || out.Status.StepStartedAt != nil || out.Status.CanaryImage != "app:v2" {
		t.Fatalf("failed pre-rollout: weight %d, step %v, canary %q", out.Weight, out.Status.StepStartedAt, out.Status.CanaryImage)
	}
	c := out.Status.Checks[0]
	if c.Weight != 0 || c.Verdict != v1.CheckInconclusive || c.Reason != v1.ReasonPreRolloutWebhookFailed || c.Value != v1.WebhookValue {
		t.Errorf("recorded attempt %+v", c)
	}
	// Long past the canary's ready timeout it still holds, not rolls back.
	a.Status.Checks = out.Status.Checks
	in.Now = t0.Add(time.Hour)
	out = Plan(in)
	if out.Status.Phase != v1.PhaseProgressing || out.Status.CanaryImage != "app:v2" || out.Weight != 0 {
		t.Fatalf("an hour later: phase %s, canary %q, weight %d", out.Status.Phase, out.Status.CanaryImage, out.Weight)
	}

	in.PreRollout = &HookResult{Passed: true, Message: "pre-rollout webhooks answered 2xx"}
	out = Plan(in)
	if out.Weight != in.Analysis.Weights[0] || out.Status.StepStartedAt == nil {
		t.Fatalf("passed pre-rollout: weight %d, step %v", out.Weight, out.Status.StepStartedAt)
	}
	if last := out.Status.Checks[len(out.Status.Checks)-1]; last.Verdict != v1.CheckPass || last.Weight != 0 {
		t.Errorf("recorded pass %+v", last)
	}
}

// A rollout webhook that does not answer 2xx fails a check Prometheus
// passed; one that answers 2xx changes nothing.
func TestRolloutHooks(t *testing.T) {
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(10, 5*time.Second)(a)
		withHooks(v1.AnalysisWebhook{Name: "load", Type: v1.WebhookRollout})(a)
	})
	pass := check(0, 10, v1.CheckPass)
	in := Input{Now: t0, App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2, Check: &pass,
		RolloutHooks: &HookResult{Passed: true}}
	if out := Plan(in); out.Status.Phase != v1.PhaseProgressing || out.Status.Checks[0].Verdict != v1.CheckPass {
		t.Fatalf("a 2xx hook: phase %s, checks %+v", out.Status.Phase, out.Status.Checks)
	}
	in.RolloutHooks = &HookResult{Reason: v1.ReasonRolloutWebhookFailed, Message: "rollout webhook load answered HTTP 500"}
	out := Plan(in)
	if out.Status.Phase != v1.PhaseFailed || out.Status.CanaryImage != "" {
		t.Fatalf("a failing hook did not roll back: phase %s", out.Status.Phase)
	}
	c := out.Status.Checks[0]
	if c.Verdict != v1.CheckFail || c.Reason != v1.ReasonRolloutWebhookFailed {
		t.Errorf("check %+v", c)
	}
	if got := out.Status.FailedImages[0].Reason; got != "AnalysisFailed: 1 failed check(s) at weight 10, last value x: rollout webhook load answered HTTP 500" {
		t.Errorf("failure record %q", got)
	}
}
