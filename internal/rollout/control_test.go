package rollout

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func plan(a *v1.CanaryApp, at time.Duration, check *v1.AnalysisCheck) Result {
	return Plan(Input{Now: t0.Add(at), App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV1, Canary: canaryV2, Check: check})
}

// next feeds a result back as the app's status, as the controller does.
func next(a *v1.CanaryApp, r Result) *v1.CanaryApp {
	a = a.DeepCopy()
	a.Status = r.Status
	return a
}

func hasEvent(r Result, reason string) bool {
	for _, e := range r.Events {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func manual(a *v1.CanaryApp) { a.Spec.Analysis = &v1.AnalysisSpec{Approval: v1.ApprovalManual} }

func TestApprovalGateHoldsAtTheLastWeight(t *testing.T) {
	g := NewWithT(t)
	// At the promotion weight (50) with a whole interval of passing checks.
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(50, time.Minute, check(-time.Second, 50, v1.CheckPass))(a)
		manual(a)
	})
	r := plan(a, 0, nil)
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))
	g.Expect(r.Weight).To(Equal(int32(50)))
	g.Expect(r.PrimaryImage).To(Equal("app:v1"), "not promoted")
	g.Expect(r.Status.Approval).NotTo(BeNil())
	g.Expect(r.Status.Approval.Image).To(Equal("app:v2"))
	g.Expect(hasEvent(r, v1.ReasonWaitingForApproval)).To(BeTrue())

	// Waiting: a passing check keeps it there, without a second event.
	a = next(a, r)
	pass := check(2*time.Second, 50, v1.CheckPass)
	r = plan(a, 2*time.Second, &pass)
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))
	g.Expect(hasEvent(r, v1.ReasonWaitingForApproval)).To(BeFalse())
	g.Expect(r.RequeueAfter).To(BeNumerically(">", 0))

	// A failing check still rolls it back.
	fail := check(4*time.Second, 50, v1.CheckFail)
	rb := plan(next(a, r), 4*time.Second, &fail)
	g.Expect(rb.Status.Phase).To(Equal(v1.PhaseFailed))
	g.Expect(rb.Status.Approval).To(BeNil())
	g.Expect(rb.CanaryImage).To(BeEmpty())

	// Approval of another image changes nothing; of this one promotes.
	a = next(a, r)
	a.Spec.ApprovedImage = "app:v9"
	g.Expect(plan(a, 5*time.Second, nil).PrimaryImage).To(Equal("app:v1"))
	a.Spec.ApprovedImage = "app:v2"
	r = plan(a, 5*time.Second, nil)
	g.Expect(r.PrimaryImage).To(Equal("app:v2"))
	g.Expect(r.Status.Phase).To(Equal(v1.PhasePromoting))
	g.Expect(r.Status.Approval).To(BeNil())
	g.Expect(r.Status.LastAction.Action).To(Equal(v1.ActionApprove))
	g.Expect(hasEvent(r, v1.ReasonApproved)).To(BeTrue())

	// The promotion's write-back says it was approved, and when.
	a = next(a, r)
	a.Spec.GitOps = &v1.GitOpsSpec{}
	done := Plan(Input{Now: t0.Add(6 * time.Second), App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV2, Canary: canaryV2})
	g.Expect(done.Status.WriteBack.Reason).To(ContainSubstring("approved at the gate (spec.approvedImage) at 2026-11-26T10:00:05Z"))
}

func TestAutomaticApprovalPromotesAsBefore(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", inCanary(50, time.Minute, check(-time.Second, 50, v1.CheckPass)))
	r := plan(a, 0, nil)
	g.Expect(r.PrimaryImage).To(Equal("app:v2"))
	g.Expect(r.Status.Approval).To(BeNil())
}

func TestSuspendFreezesTheWeightAndTheStepClock(t *testing.T) {
	g := NewWithT(t)
	// 20s into a 30s step at weight 10.
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(10, 20*time.Second, check(-time.Second, 10, v1.CheckPass))(a)
		a.Spec.Suspend = true
	})
	r := plan(a, 0, nil)
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))
	g.Expect(r.Status.SuspendedAt.Time).To(Equal(t0))
	g.Expect(hasEvent(r, v1.ReasonSuspended)).To(BeTrue())

	// An hour later, with passing checks, the weight has not moved.
	a = next(a, r)
	pass := check(time.Hour, 10, v1.CheckPass)
	r = plan(a, time.Hour, &pass)
	g.Expect(r.Weight).To(Equal(int32(10)))
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))

	// A failing check still rolls it back while suspended.
	fail := check(time.Hour+time.Second, 10, v1.CheckFail)
	g.Expect(plan(next(a, r), time.Hour+time.Second, &fail).Status.Phase).To(Equal(v1.PhaseFailed))

	// Resumed: the 10s left of the step run from now, not from before.
	a = next(a, r)
	a.Spec.Suspend = false
	r = plan(a, time.Hour+2*time.Second, nil)
	g.Expect(hasEvent(r, v1.ReasonResumed)).To(BeTrue())
	g.Expect(r.Status.SuspendedAt).To(BeNil())
	g.Expect(r.Weight).To(Equal(int32(10)))
	g.Expect(r.Status.StepStartedAt.Time).To(Equal(t0.Add(time.Hour + 2*time.Second - 20*time.Second)))
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseProgressing))
}

func TestSuspendHoldsACanaryAtWeightZero(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(0, 0)(a)
		a.Status.StepStartedAt = nil
		a.Spec.Suspend = true
	})
	r := plan(a, 0, nil)
	g.Expect(r.Weight).To(Equal(int32(0)))
	g.Expect(r.Status.StepStartedAt).To(BeNil())
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))
	a = next(a, r)
	a.Spec.Suspend = false
	g.Expect(plan(a, time.Second, nil).Weight).To(Equal(int32(10)))
}

func TestAbortIsActedOnOnce(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(20, time.Second, check(-time.Second, 20, v1.CheckPass))(a)
		a.Annotations = map[string]string{v1.AbortAnnotation: "req-1", v1.RequestedByAnnotation: "alice"}
	})
	r := plan(a, 0, nil)
	g.Expect(r.CanaryImage).To(BeEmpty())
	g.Expect(r.Weight).To(Equal(int32(0)))
	g.Expect(r.PrimaryImage).To(Equal("app:v1"))
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseFailed))
	g.Expect(r.Status.Requests.Abort).To(Equal("req-1"))
	g.Expect(r.Status.FailedImages).To(HaveLen(1))
	g.Expect(r.Status.FailedImages[0].Reason).To(ContainSubstring("aborted by alice (request req-1)"))
	g.Expect(r.Status.LastAction).To(PointTo(MatchFields(IgnoreExtras, Fields{"Action": Equal(v1.ActionAbort), "ID": Equal("req-1"), "By": Equal("alice")})))

	// The same request read again (a resync, a restart, a second delivery)
	// does nothing; a later canary is not aborted by it.
	a = next(a, r)
	a.Spec.Image = "app:v3"
	r = plan(a, time.Second, nil)
	g.Expect(r.CanaryImage).To(Equal("app:v3"))
	g.Expect(hasEvent(r, v1.ReasonAborted)).To(BeFalse())
	a = next(a, r)
	g.Expect(plan(a, 2*time.Second, nil).CanaryImage).To(Equal("app:v3"))
}

func TestAbortWithoutACanaryIsAcknowledged(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v1", func(a *v1.CanaryApp) { a.Annotations = map[string]string{v1.AbortAnnotation: "x"} })
	r := plan(a, 0, nil)
	g.Expect(r.Status.Requests.Abort).To(Equal("x"))
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseStable))
	g.Expect(r.Status.FailedImages).To(BeEmpty())
}

func TestRetry(t *testing.T) {
	failedV3 := func(a *v1.CanaryApp) {
		a.Status.FailedImages = []v1.FailedImage{{Image: "app:v3", Reason: "AnalysisFailed"}}
		a.Status.Phase = v1.PhaseFailed
	}
	t.Run("an in-cluster record is removed and the canary starts", func(t *testing.T) {
		g := NewWithT(t)
		a := app("app:v3", func(a *v1.CanaryApp) {
			failedV3(a)
			a.Annotations = map[string]string{v1.RetryAnnotation: "r1"}
		})
		r := plan(a, 0, nil)
		g.Expect(r.Status.FailedImages).To(BeEmpty())
		g.Expect(r.Status.Requests.Retry).To(Equal("r1"))
		g.Expect(r.Status.WriteBack).To(BeNil(), "nothing to write without spec.gitops")
		g.Expect(hasEvent(r, v1.ReasonRetryAllowed)).To(BeTrue())
		g.Expect(r.CanaryImage).To(Equal("app:v3"), "the canary starts in the same step")
	})
	t.Run("a record Git holds is written back as removed", func(t *testing.T) {
		g := NewWithT(t)
		a := app("app:v1", func(a *v1.CanaryApp) {
			a.Spec.FailedImages = []v1.FailedImage{{Image: "app:v3"}}
			a.Spec.GitOps = &v1.GitOpsSpec{}
			a.Annotations = map[string]string{v1.RetryAnnotation: "r2 app:v3", v1.RequestedByAnnotation: "bob"}
		})
		r := plan(a, 0, nil)
		g.Expect(r.Status.WriteBack).NotTo(BeNil())
		g.Expect(r.Status.WriteBack.Outcome).To(Equal(v1.OutcomeRetryAllowed))
		g.Expect(r.Status.WriteBack.FailedImage).To(Equal("app:v3"))
		g.Expect(r.Status.WriteBack.Image).To(Equal("app:v1"))
		g.Expect(r.Status.WriteBack.Reason).To(ContainSubstring("bob"))
	})
	t.Run("waits while another outcome is pending", func(t *testing.T) {
		g := NewWithT(t)
		a := app("app:v1", func(a *v1.CanaryApp) {
			a.Spec.FailedImages = []v1.FailedImage{{Image: "app:v3"}}
			a.Spec.GitOps = &v1.GitOpsSpec{}
			a.Status.WriteBack = &v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, Image: "app:v1", FailedImage: "app:v3", Pending: true, DecidedAt: metav1.NewTime(t0)}
			a.Annotations = map[string]string{v1.RetryAnnotation: "r3 app:v3"}
		})
		r := plan(a, 0, nil)
		g.Expect(r.Status.Requests).To(BeNil(), "not acknowledged yet")
		g.Expect(r.Status.WriteBack.Outcome).To(Equal(v1.OutcomeRolledBack))
		g.Expect(r.RequeueAfter).To(BeNumerically(">", 0))
	})
}

func TestApprovalRequestedInGit(t *testing.T) {
	g := NewWithT(t)
	gated := func(a *v1.CanaryApp) {
		inCanary(50, time.Minute, check(-time.Second, 50, v1.CheckPass))(a)
		manual(a)
		a.Spec.GitOps = &v1.GitOpsSpec{Promotion: v1.WritePullRequest}
	}
	commit := app("app:v2", func(a *v1.CanaryApp) { gated(a); a.Spec.GitOps.Promotion = v1.WriteCommit })
	g.Expect(plan(commit, 0, nil).Status.WriteBack).To(BeNil(), "promotions by commit: approved by setting the field, no pull request")
	r := plan(app("app:v2", gated), 0, nil)
	g.Expect(r.Status.WriteBack).NotTo(BeNil())
	g.Expect(r.Status.WriteBack.Outcome).To(Equal(v1.OutcomeApprovalRequested))
	g.Expect(r.Status.WriteBack.Image).To(Equal("app:v2"))
	g.Expect(r.Status.WriteBack.Pending).To(BeTrue())

	// Requested once: the pull request opened, the next step asks nothing.
	a := next(app("app:v2", gated), r)
	a.Status.WriteBack.Pending, a.Status.WriteBack.PullRequestState = false, "open"
	r = plan(a, time.Second, nil)
	g.Expect(r.Status.WriteBack.PullRequestState).To(Equal("open"))
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))

	// Closed unmerged: rejected, rolled back, the failure to be written.
	a = next(a, r)
	a.Status.WriteBack.PullRequestState = "closed"
	r = plan(a, 2*time.Second, nil)
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseFailed))
	g.Expect(r.CanaryImage).To(BeEmpty())
	g.Expect(r.Status.FailedImages[len(r.Status.FailedImages)-1].Reason).To(HavePrefix(v1.ReasonRejectedInReview + ": rejected in review"))
	g.Expect(r.Status.WriteBack.Outcome).To(Equal(v1.OutcomeRolledBack))
	g.Expect(r.Status.WriteBack.FailedImage).To(Equal("app:v2"))
	g.Expect(r.Status.WriteBack.Supersedes).To(BeNil(), "the closed pull request needs no closing")
}

// A canary at the gate that is rolled back (a failing check, an abort)
// while its approval pull request is open hands that pull request to the
// rollback's write-back, which closes it.
func TestRollbackAtTheGateSupersedesTheApprovalPullRequest(t *testing.T) {
	g := NewWithT(t)
	ref := &v1.PullRequestRef{Repository: "team/apps", Branch: "canaryop/ns/app/approvalrequested-app-v2", Base: "main", Number: 7}
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(50, time.Minute, check(-time.Second, 50, v1.CheckPass))(a)
		manual(a)
		a.Spec.GitOps = &v1.GitOpsSpec{Promotion: v1.WritePullRequest}
		a.Status.Approval = &v1.ApprovalStatus{Image: "app:v2"}
		a.Status.WriteBack = &v1.WriteBackStatus{Outcome: v1.OutcomeApprovalRequested, Image: "app:v2", DecidedAt: metav1.NewTime(t0),
			PullRequestState: "open", PullRequestURL: "https://github.example.com/team/apps/pull/7", PullRequest: ref}
	})
	r := plan(a, 0, &v1.AnalysisCheck{Time: metav1.NewTime(t0), Weight: 50, Verdict: v1.CheckFail, Value: "5", Image: "app:v2"})
	g.Expect(r.Status.WriteBack.Outcome).To(Equal(v1.OutcomeRolledBack))
	g.Expect(r.Status.WriteBack.Supersedes).To(Equal(ref))
	g.Expect(r.Status.WriteBack.PullRequest).To(BeNil())
}

func TestApprovalRequestWaitsForTheOutbox(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(50, time.Minute, check(-time.Second, 50, v1.CheckPass))(a)
		manual(a)
		a.Spec.GitOps = &v1.GitOpsSpec{Promotion: v1.WritePullRequest}
		a.Status.WriteBack = &v1.WriteBackStatus{Outcome: v1.OutcomePromoted, Image: "app:v1", Pending: true, DecidedAt: metav1.NewTime(t0)}
	})
	r := plan(a, 0, nil)
	g.Expect(r.Status.WriteBack.Outcome).To(Equal(v1.OutcomePromoted), "the pending outcome is kept")
	g.Expect(r.Status.Phase).To(Equal(v1.PhaseSuspended))
	a = next(a, r)
	a.Status.WriteBack.Pending = false
	g.Expect(plan(a, time.Second, nil).Status.WriteBack.Outcome).To(Equal(v1.OutcomeApprovalRequested))
}

// The step that approved may not have had its status saved (a conflict
// after the primary got the image): the promotion still records it.
func TestApprovalRecordedWhenItsStepWasLost(t *testing.T) {
	g := NewWithT(t)
	a := app("app:v2", func(a *v1.CanaryApp) {
		inCanary(50, time.Minute, check(-time.Second, 50, v1.CheckPass))(a)
		manual(a)
		a.Spec.ApprovedImage = "app:v2"
		a.Status.Phase = v1.PhaseSuspended
		a.Status.Approval = &v1.ApprovalStatus{Image: "app:v2"}
	})
	r := Plan(Input{Now: t0, App: a, Analysis: a.Spec.EffectiveAnalysis(), Primary: primaryV2, Canary: canaryV2})
	g.Expect(r.Status.StableImage).To(Equal("app:v2"))
	g.Expect(r.Status.LastAction).NotTo(BeNil())
	g.Expect(r.Status.LastAction.Action).To(Equal(v1.ActionApprove))
}
