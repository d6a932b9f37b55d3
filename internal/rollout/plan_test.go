package rollout

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func mt(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

func app(image string, mutate func(*v1.CanaryApp)) *v1.CanaryApp {
	a := &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "default"},
		Spec: v1.CanaryAppSpec{Image: image, ImageListenPort: 8088, Replicas: 2, TestReplicas: 1,
			PrometheusQuery: "up > 2", PrometheusURL: "http://prom:9090"},
		Status: v1.CanaryAppStatus{StableImage: "app:v1", Phase: v1.PhaseStable},
	}
	if mutate != nil {
		mutate(a)
	}
	return a
}

func check(at time.Duration, weight int32, verdict v1.CheckVerdict) v1.AnalysisCheck {
	return v1.AnalysisCheck{Time: *mt(at), Weight: weight, Verdict: verdict, Value: "x", Image: "app:v2"}
}

var (
	primaryV1 = Deployment{Exists: true, Image: "app:v1", Available: true}
	primaryV2 = Deployment{Exists: true, Image: "app:v2", Available: true}
	canaryV2  = Deployment{Exists: true, Image: "app:v2", Available: true}
)

func inCanary(weight int32, stepAgo time.Duration, checks ...v1.AnalysisCheck) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		a.Status.CanaryImage = "app:v2"
		a.Status.CanaryWeight = weight
		a.Status.CanaryStartedAt = mt(-10 * time.Minute)
		a.Status.StepStartedAt = mt(-stepAgo)
		a.Status.Checks = checks
		a.Status.Phase = v1.PhaseProgressing
	}
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name    string
		app     *v1.CanaryApp
		primary Deployment
		canary  Deployment
		check   *v1.AnalysisCheck

		wantPrimary  string
		wantCanary   string
		wantWeight   int32
		wantPhase    v1.Phase
		wantStable   string
		wantEvent    string
		wantRequeue  bool
		wantFailed   []string
		wantOutcome  v1.Outcome
		wantFailures int32
	}{
		{
			name:        "first reconcile deploys spec.image as stable",
			app:         app("app:v1", func(a *v1.CanaryApp) { a.Status = v1.CanaryAppStatus{} }),
			wantPrimary: "app:v1", wantStable: "app:v1", wantPhase: v1.PhaseInitializing, wantEvent: v1.ReasonInitializing, wantRequeue: true,
		},
		{
			name:        "lost status adopts the image the primary runs",
			app:         app("app:v2", func(a *v1.CanaryApp) { a.Status = v1.CanaryAppStatus{} }),
			primary:     primaryV1,
			wantPrimary: "app:v1", wantStable: "app:v1", wantPhase: v1.PhaseInitializing, wantEvent: v1.ReasonInitializing, wantRequeue: true,
		},
		{
			name:        "stable and available",
			app:         app("app:v1", nil),
			primary:     primaryV1,
			wantPrimary: "app:v1", wantStable: "app:v1", wantPhase: v1.PhaseStable,
		},
		{
			name:        "image change starts a canary at weight 0",
			app:         app("app:v2", nil),
			primary:     primaryV1,
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 0, wantPhase: v1.PhaseProgressing,
			wantStable: "app:v1", wantEvent: v1.ReasonWaitingForCanary, wantRequeue: true,
		},
		{
			name: "failed image is never canaried again",
			app: app("app:v3", func(a *v1.CanaryApp) {
				a.Status.FailedImages = []v1.FailedImage{{Image: "app:v3"}}
			}),
			primary:     primaryV1,
			wantPrimary: "app:v1", wantPhase: v1.PhaseFailed, wantStable: "app:v1", wantFailed: []string{"app:v3"},
		},
		{
			name:        "failed image recorded in Git (spec) is never canaried",
			app:         app("app:v3", func(a *v1.CanaryApp) { a.Spec.FailedImages = []v1.FailedImage{{Image: "app:v3"}} }),
			primary:     primaryV1,
			wantPrimary: "app:v1", wantPhase: v1.PhaseFailed, wantStable: "app:v1",
		},
		{
			name: "canary not yet available waits",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(0, 0)(a)
				a.Status.StepStartedAt = nil
				a.Status.CanaryStartedAt = mt(-time.Minute)
			}),
			primary: primaryV1, canary: Deployment{Exists: true, Image: "app:v2"},
			wantPrimary: "app:v1", wantCanary: "app:v2", wantPhase: v1.PhaseProgressing, wantStable: "app:v1", wantRequeue: true,
		},
		{
			name: "canary available gets the first weight",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(0, 0)(a)
				a.Status.StepStartedAt = nil
			}),
			primary: primaryV1, canary: canaryV2,
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 10, wantPhase: v1.PhaseProgressing,
			wantStable: "app:v1", wantEvent: v1.ReasonAnalysing, wantRequeue: true,
		},
		{
			name: "canary never ready rolls back at the deadline",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(0, 0)(a)
				a.Status.StepStartedAt = nil
				a.Status.CanaryStartedAt = mt(-v1.DefaultCanaryReadyTimeout)
				a.Spec.GitOps = &v1.GitOpsSpec{}
			}),
			primary: primaryV1, canary: Deployment{Exists: true, Image: "app:v2"},
			wantPrimary: "app:v1", wantPhase: v1.PhaseFailed, wantStable: "app:v1", wantEvent: v1.ReasonRolledBack,
			wantFailed: []string{"app:v2"}, wantOutcome: v1.OutcomeRolledBack,
		},
		{
			name: "canary whose rollout exceeded its progress deadline rolls back at once",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(0, 0)(a)
				a.Status.StepStartedAt = nil
				a.Status.CanaryStartedAt = mt(-time.Minute)
			}),
			primary: primaryV1, canary: Deployment{Exists: true, Image: "app:v2", Failed: true},
			wantPrimary: "app:v1", wantPhase: v1.PhaseFailed, wantStable: "app:v1", wantEvent: v1.ReasonRolledBack,
			wantFailed: []string{"app:v2"},
		},
		{
			name:    "failed check rolls back with the default threshold of 1",
			app:     app("app:v2", inCanary(20, 5*time.Second, check(-2*time.Second, 20, v1.CheckPass))),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckFail, Value: "3"},
			wantPrimary: "app:v1", wantPhase: v1.PhaseFailed, wantStable: "app:v1", wantEvent: v1.ReasonRolledBack,
			wantFailed: []string{"app:v2"},
		},
		{
			name: "failed check below the threshold holds the weight",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(20, 40*time.Second)(a)
				a.Spec.Analysis = &v1.AnalysisSpec{FailureThreshold: ptr(int32(2))}
			}),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckFail, Value: "3"},
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 20, wantPhase: v1.PhaseProgressing, wantStable: "app:v1",
			wantRequeue: true, wantFailures: 1,
		},
		{
			name:    "inconclusive check with Hold never advances the weight",
			app:     app("app:v2", inCanary(20, 40*time.Second)),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckInconclusive, Message: "connection refused"},
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 20, wantPhase: v1.PhaseProgressing, wantStable: "app:v1", wantRequeue: true,
		},
		{
			name: "inconclusive check with Fail rolls back",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(20, 40*time.Second)(a)
				a.Spec.Analysis = &v1.AnalysisSpec{OnQueryError: v1.QueryErrorFail}
			}),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckInconclusive},
			wantPrimary: "app:v1", wantPhase: v1.PhaseFailed, wantStable: "app:v1", wantEvent: v1.ReasonRolledBack, wantFailed: []string{"app:v2"},
		},
		{
			name: "a query the admin does not allow holds even with Fail",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(20, 40*time.Second)(a)
				a.Spec.Analysis = &v1.AnalysisSpec{OnQueryError: v1.QueryErrorFail}
			}),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckInconclusive, Reason: v1.ReasonPrometheusURLNotAllowed},
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 20, wantPhase: v1.PhaseProgressing, wantStable: "app:v1", wantRequeue: true,
		},
		{
			name:    "passing check before the interval keeps the weight",
			app:     app("app:v2", inCanary(20, 10*time.Second)),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckPass},
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 20, wantPhase: v1.PhaseProgressing, wantStable: "app:v1", wantRequeue: true,
		},
		{
			name:    "passing check after the interval steps the weight",
			app:     app("app:v2", inCanary(20, 30*time.Second)),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 20, Verdict: v1.CheckPass},
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 30, wantPhase: v1.PhaseProgressing, wantStable: "app:v1",
			wantEvent: v1.ReasonAnalysing, wantRequeue: true,
		},
		{
			name:    "a pass from before the current step is no evidence",
			app:     app("app:v2", inCanary(20, 40*time.Second, check(-50*time.Second, 10, v1.CheckPass))),
			primary: primaryV1, canary: canaryV2,
			wantPrimary: "app:v1", wantCanary: "app:v2", wantWeight: 20, wantPhase: v1.PhaseProgressing, wantStable: "app:v1", wantRequeue: true,
		},
		{
			name:    "passing at the promotion weight starts the promotion",
			app:     app("app:v2", inCanary(50, 30*time.Second)),
			primary: primaryV1, canary: canaryV2,
			check:       &v1.AnalysisCheck{Time: *mt(0), Weight: 50, Verdict: v1.CheckPass},
			wantPrimary: "app:v2", wantCanary: "app:v2", wantWeight: 50, wantPhase: v1.PhasePromoting, wantStable: "app:v1",
			wantEvent: v1.ReasonPromoting, wantRequeue: true,
		},
		{
			name:    "promotion waits for the primary rollout",
			app:     app("app:v2", inCanary(50, 40*time.Second)),
			primary: Deployment{Exists: true, Image: "app:v2"}, canary: canaryV2,
			wantPrimary: "app:v2", wantCanary: "app:v2", wantWeight: 50, wantPhase: v1.PhasePromoting, wantStable: "app:v1", wantRequeue: true,
		},
		{
			name: "promotion finishes: stable image, weight 0, canary removed, write-back pending",
			app: app("app:v2", func(a *v1.CanaryApp) {
				inCanary(50, 40*time.Second)(a)
				a.Spec.GitOps = &v1.GitOpsSpec{}
			}),
			primary: primaryV2, canary: canaryV2,
			wantPrimary: "app:v2", wantPhase: v1.PhaseStable, wantStable: "app:v2", wantEvent: v1.ReasonPromoted, wantOutcome: v1.OutcomePromoted,
		},
		{
			name:    "new image mid-canary restarts the analysis",
			app:     app("app:v4", inCanary(30, 5*time.Second, check(-time.Second, 30, v1.CheckPass))),
			primary: primaryV1, canary: canaryV2,
			wantPrimary: "app:v1", wantCanary: "app:v4", wantWeight: 0, wantPhase: v1.PhaseProgressing, wantStable: "app:v1",
			wantEvent: v1.ReasonWaitingForCanary, wantRequeue: true,
		},
		{
			name:    "spec back at stable aborts the canary without a failure record",
			app:     app("app:v1", inCanary(30, 5*time.Second)),
			primary: primaryV1, canary: canaryV2,
			wantPrimary: "app:v1", wantPhase: v1.PhaseStable, wantStable: "app:v1", wantEvent: v1.ReasonStable,
		},
		{
			name: "failure record handed over to Git once Git holds it",
			app: app("app:v1", func(a *v1.CanaryApp) {
				a.Spec.FailedImages = []v1.FailedImage{{Image: "app:v3"}}
				a.Status.FailedImages = []v1.FailedImage{{Image: "app:v3"}, {Image: "app:v0"}}
			}),
			primary:     primaryV1,
			wantPrimary: "app:v1", wantPhase: v1.PhaseStable, wantStable: "app:v1", wantFailed: []string{"app:v0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			in := Input{Now: t0, App: tc.app, Analysis: tc.app.Spec.EffectiveAnalysis(), Primary: tc.primary, Canary: tc.canary, Check: tc.check}
			before := tc.app.DeepCopy()
			r := Plan(in)
			g.Expect(tc.app).To(Equal(before), "Plan must not modify its input")
			g.Expect(r.PrimaryImage).To(Equal(tc.wantPrimary), "primary image")
			g.Expect(r.CanaryImage).To(Equal(tc.wantCanary), "canary image")
			g.Expect(r.Weight).To(Equal(tc.wantWeight), "weight")
			g.Expect(r.Status.Phase).To(Equal(tc.wantPhase), "phase")
			g.Expect(r.Status.StableImage).To(Equal(tc.wantStable), "stable image")
			g.Expect(r.Status.FailedChecks).To(Equal(tc.wantFailures), "failed checks")
			g.Expect(r.RequeueAfter > 0).To(Equal(tc.wantRequeue), "requeue %s", r.RequeueAfter)
			var reasons []string
			for _, e := range r.Events {
				reasons = append(reasons, e.Reason)
			}
			if tc.wantEvent == "" {
				g.Expect(reasons).To(BeEmpty())
			} else {
				g.Expect(reasons).To(Equal([]string{tc.wantEvent}))
			}
			var failed []string
			for _, f := range r.Status.FailedImages {
				failed = append(failed, f.Image)
			}
			g.Expect(failed).To(Equal(tc.wantFailed), "failed images")
			if tc.wantOutcome == "" {
				g.Expect(r.Status.WriteBack).To(BeNil())
			} else {
				g.Expect(r.Status.WriteBack).NotTo(BeNil())
				g.Expect(r.Status.WriteBack.Outcome).To(Equal(tc.wantOutcome))
				g.Expect(r.Status.WriteBack.Pending).To(BeTrue())
				if tc.wantOutcome == v1.OutcomePromoted {
					g.Expect(r.Status.WriteBack.PreviousImage).To(Equal(tc.app.Status.StableImage))
				}
			}
		})
	}
}

func TestCheckDue(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", inCanary(20, 5*time.Second, check(-3*time.Second, 20, v1.CheckPass)))
	in := Input{Now: t0, App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2}
	g.Expect(CheckDue(in)).To(BeTrue(), "3s since the last check, interval 2s")
	in.Now = t0.Add(-2 * time.Second)
	g.Expect(CheckDue(in)).To(BeFalse(), "1s since the last check")

	waiting := app("app:v2", inCanary(0, 0))
	waiting.Status.StepStartedAt = nil
	g.Expect(CheckDue(Input{Now: t0, App: waiting, Analysis: waiting.Spec.EffectiveAnalysis()})).To(BeFalse(), "no checks before the canary takes traffic")

	promotingApp := app("app:v2", inCanary(50, time.Minute))
	g.Expect(CheckDue(Input{Now: t0, App: promotingApp, Analysis: promotingApp.Spec.EffectiveAnalysis(), Primary: primaryV2})).To(BeFalse(), "no checks while promoting")
}

// TestPlanWalksTheOriginalStory drives Plan like the controller would, with
// a clock, through v1 -> v2 (promoted) -> v3 (rolled back), and checks the
// weights visited are the original operator's.
func TestPlanWalksTheOriginalStory(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v1", func(a *v1.CanaryApp) { a.Status = v1.CanaryAppStatus{} })
	now := t0
	primary := Deployment{}
	canary := Deployment{}
	var weights []int32
	run := func(bad bool, limit int) {
		for range limit {
			in := Input{Now: now, App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primary, Canary: canary}
			if CheckDue(in) {
				v := v1.CheckPass
				if bad {
					v = v1.CheckFail
				}
				in.Check = &v1.AnalysisCheck{Time: metav1.NewTime(now), Weight: a.Status.CanaryWeight, Verdict: v}
			}
			r := Plan(in)
			a.Status = r.Status
			primary = Deployment{Exists: true, Image: r.PrimaryImage, Available: true}
			canary = Deployment{}
			if r.CanaryImage != "" {
				canary = Deployment{Exists: true, Image: r.CanaryImage, Available: true}
			}
			if len(weights) == 0 || weights[len(weights)-1] != r.Weight {
				weights = append(weights, r.Weight)
			}
			if r.RequeueAfter == 0 {
				return
			}
			now = now.Add(r.RequeueAfter)
		}
		t.Fatalf("did not settle in %d steps", limit)
	}
	run(false, 10)
	g.Expect(a.Status.Phase).To(Equal(v1.PhaseStable))
	a.Spec.Image = "app:v2"
	start := now
	run(false, 200)
	g.Expect(a.Status.StableImage).To(Equal("app:v2"))
	g.Expect(weights).To(Equal([]int32{0, 10, 20, 30, 40, 50, 0}))
	g.Expect(now.Sub(start)).To(BeNumerically("~", 5*30*time.Second, 10*time.Second))

	a.Spec.Image = "app:v3"
	weights = nil
	run(true, 200)
	g.Expect(a.Status.StableImage).To(Equal("app:v2"))
	g.Expect(a.Status.Phase).To(Equal(v1.PhaseFailed))
	g.Expect(a.IsFailedImage("app:v3")).To(BeTrue())
	g.Expect(weights).To(Equal([]int32{0, 10, 0}))
}

func ptr[T any](v T) *T { return &v }

// TestPlanNeedsAWholeIntervalOfPasses: a check that did not pass (here
// Prometheus down) restarts the interval, so the first pass after an outage
// does not step the weight.
func TestPlanNeedsAWholeIntervalOfPasses(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", inCanary(20, 40*time.Second))
	step := func(at time.Duration, v v1.CheckVerdict) Result {
		in := Input{Now: t0.Add(at), App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2,
			Check: &v1.AnalysisCheck{Time: *mt(at), Weight: a.Status.CanaryWeight, Verdict: v}}
		r := Plan(in)
		a.Status = r.Status
		return r
	}
	g.Expect(step(0, v1.CheckInconclusive).Weight).To(Equal(int32(20)))
	g.Expect(a.Status.StepStartedAt.Time).To(Equal(t0), "the inconclusive check restarted the interval")
	g.Expect(step(2*time.Second, v1.CheckPass).Weight).To(Equal(int32(20)), "one pass after the outage is not an interval of passes")
	g.Expect(step(28*time.Second, v1.CheckPass).Weight).To(Equal(int32(20)))
	g.Expect(step(30*time.Second, v1.CheckPass).Weight).To(Equal(int32(30)), "a whole interval of passes since the outage")
}

func TestPlanQueuesUnderTheCap(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", nil)
	in := Input{Now: t0, App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Queued: true}
	out := Plan(in)
	g.Expect(out.CanaryImage).To(BeEmpty(), "no canary while queued")
	g.Expect(out.PrimaryImage).To(Equal("app:v1"))
	g.Expect(out.Status.Phase).To(Equal(v1.PhaseQueued))
	g.Expect(out.Status.QueuedAt).To(Equal(mt(0)))
	g.Expect(out.Events).To(ConsistOf(HaveField("Reason", v1.ReasonQueued)))
	g.Expect(out.RequeueAfter).To(Equal(queueRecheck))

	// Still queued later: the first queuedAt stays (it is the place in
	// line) and no second event is recorded.
	in.App.Status = out.Status
	in.Now = t0.Add(time.Minute)
	again := Plan(in)
	g.Expect(again.Status.QueuedAt).To(Equal(mt(0)))
	g.Expect(again.Events).To(BeEmpty())

	// Admitted: the canary starts and the queue mark goes.
	in.App.Status = again.Status
	in.Queued = false
	started := Plan(in)
	g.Expect(started.CanaryImage).To(Equal("app:v2"))
	g.Expect(started.Status.QueuedAt).To(BeNil())

	// A canary under way is never held back by the cap.
	running := Input{Now: t0, App: app("app:v2", inCanary(25, time.Second)), Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2, Queued: true,
		Check: &v1.AnalysisCheck{Time: *mt(0), Weight: 25, Verdict: v1.CheckFail, Value: "5", Image: "app:v2"}}
	rolled := Plan(running)
	g.Expect(rolled.Status.Phase).NotTo(Equal(v1.PhaseQueued))
	g.Expect(rolled.Weight).To(Equal(int32(0)), "a failing canary is rolled back while queued apps wait")

	// Back at the stable image: nothing waits.
	in.App = app("app:v1", func(a *v1.CanaryApp) { a.Status.QueuedAt = mt(0) })
	g.Expect(Plan(in).Status.QueuedAt).To(BeNil())
}
