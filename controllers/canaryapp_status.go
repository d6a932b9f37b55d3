package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func metav1Time(t time.Time) metav1.Time { return metav1.NewTime(t) }

func equalStatus(a, b *v1.CanaryApp) bool {
	return equality.Semantic.DeepEqual(a.Status, b.Status)
}

// setConditions derives Ready, Progressing, Reconciling, Stalled, Analysis
// and WriteBack from the status the planner produced and what the
// sub-reconcilers observed. It is pure: the conditions are a function of
// the status, never state of their own.
func setConditions(app *v1.CanaryApp, obs *observation) {
	set := conditionSetter(app)
	switch {
	case obs.foreign != nil:
		msg := obs.foreign.Error()
		app.Status.Phase = v1.PhaseStalled
		set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonForeignObject, msg)
		set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonForeignObject, msg)
		set(v1.ConditionProgressing, metav1.ConditionFalse, v1.ReasonForeignObject, msg)
		setReconciling(app)
		return
	case obs.routerNotEnabled != nil:
		msg := obs.routerNotEnabled.Error()
		app.Status.Phase = v1.PhaseStalled
		set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRouterNotEnabled, msg)
		set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonRouterNotEnabled, msg)
		set(v1.ConditionProgressing, metav1.ConditionFalse, v1.ReasonRouterNotEnabled, msg)
	case obs.template != nil:
		msg := truncate(obs.template.Error(), 1024)
		app.Status.Phase = v1.PhaseStalled
		set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonInvalidTemplate, msg)
		set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonInvalidTemplate, msg)
		set(v1.ConditionProgressing, metav1.ConditionFalse, v1.ReasonInvalidTemplate, msg)
	case obs.err != nil:
		// The sub-reconcilers stopped early, so what they observed is
		// incomplete: say what happened instead of guessing the rest.
		set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonReconcileError, truncate(obs.err.Error(), 1024))
	default:
		setRolloutConditions(app, obs)
		if obs.routeRefused != nil {
			set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRouteNotAllowed, truncate(obs.routeRefused.Error(), 1024))
		}
		setAnalysisCondition(app)
		setNotificationsCondition(app, obs.notifications)
	}
	setReconciling(app)
	setWriteBackConditions(app)
}

// conditionSetter sets a condition of app at its generation.
func conditionSetter(app *v1.CanaryApp) func(t string, s metav1.ConditionStatus, reason, msg string) {
	return func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: app.Generation})
	}
}

// setRolloutConditions derives Ready, Progressing and Stalled from where the
// rollout stands: a failed image in the spec, a canary, a primary not yet
// available, or stable.
func setRolloutConditions(app *v1.CanaryApp, obs *observation) {
	st := &app.Status
	set := conditionSetter(app)
	failedSpec := st.CanaryImage == "" && app.Spec.Image != st.StableImage && app.IsFailedImage(app.Spec.Image)
	if !failedSpec {
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
	}
	switch {
	case failedSpec:
		reason := v1.ReasonImagePreviouslyFailed
		if last := lastFailure(app); last != nil && last.Image == app.Spec.Image {
			reason = v1.ReasonRolledBack
			for _, r := range []string{v1.ReasonAborted, v1.ReasonRejectedInReview} {
				if strings.HasPrefix(last.Reason, r+":") {
					reason = r
				}
			}
		}
		msg := fmt.Sprintf("spec.image %s failed its canary and is not tried again; the app keeps running %s. Name another image, or allow a retry (the canary.atze.io/retry annotation, or remove its spec.failedImages entry in Git) to go on", app.Spec.Image, st.StableImage)
		set(v1.ConditionStalled, metav1.ConditionTrue, reason, msg)
		set(v1.ConditionReady, metav1.ConditionFalse, reason, msg)
		set(v1.ConditionProgressing, metav1.ConditionFalse, reason, msg)
	case st.CanaryImage != "":
		reason, msg := progressReason(st)
		set(v1.ConditionProgressing, metav1.ConditionTrue, reason, msg)
		set(v1.ConditionReady, metav1.ConditionFalse, reason, msg)
	case st.Phase == v1.PhaseQueued:
		msg := fmt.Sprintf("canary of %s is queued under the limit on canaries progressing at once; running %s with all traffic", app.Spec.Image, st.StableImage)
		if obs.queued != nil {
			msg += ": " + obs.queued.Message(app.Namespace)
		}
		set(v1.ConditionProgressing, metav1.ConditionFalse, v1.ReasonQueued, msg)
		set(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonQueued, msg)
	case !obs.primaryAvailable:
		msg := fmt.Sprintf("waiting for Deployment %s to run %s with all replicas available", app.Name, st.StableImage)
		set(v1.ConditionProgressing, metav1.ConditionTrue, v1.ReasonInitializing, msg)
		set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonPrimaryNotReady, msg)
	default:
		reason, msg := v1.ReasonStable, fmt.Sprintf("running %s with all traffic", st.StableImage)
		if wb := st.WriteBack; wb != nil && wb.Outcome == v1.OutcomePromoted && wb.Image == st.StableImage {
			reason = v1.ReasonPromoted
		}
		set(v1.ConditionReady, metav1.ConditionTrue, reason, msg)
		set(v1.ConditionProgressing, metav1.ConditionFalse, reason, msg)
	}
}

func progressReason(st *v1.CanaryAppStatus) (string, string) {
	switch {
	case st.Phase == v1.PhasePromoting:
		return v1.ReasonPromoting, fmt.Sprintf("primary is rolling out %s", st.CanaryImage)
	case st.Approval != nil:
		msg := fmt.Sprintf("canary %s passed analysis at weight %d and waits for approval: set spec.approvedImage to it", st.CanaryImage, st.CanaryWeight)
		if wb := st.WriteBack; wb != nil && wb.Outcome == v1.OutcomeApprovalRequested && wb.Image == st.CanaryImage && wb.PullRequestURL != "" {
			msg += " (merge " + wb.PullRequestURL + ")"
		}
		return v1.ReasonWaitingForApproval, msg
	case st.SuspendedAt != nil:
		return v1.ReasonSuspended, fmt.Sprintf("canary %s is suspended at weight %d (spec.suspend); checks keep running", st.CanaryImage, st.CanaryWeight)
	case st.StepStartedAt == nil && len(st.Checks) > 0 && st.Checks[len(st.Checks)-1].Verdict != v1.CheckPass:
		// Only pre-rollout webhook attempts are recorded before the
		// canary gets traffic.
		c := st.Checks[len(st.Checks)-1]
		return v1.ReasonPreRolloutWebhookFailed, fmt.Sprintf("canary %s is available and holds at weight 0: %s", st.CanaryImage, c.Message)
	case st.StepStartedAt == nil:
		return v1.ReasonWaitingForCanary, fmt.Sprintf("waiting for canary %s to become available", st.CanaryImage)
	default:
		return v1.ReasonAnalysing, fmt.Sprintf("canary %s receives %d%% of traffic", st.CanaryImage, st.CanaryWeight)
	}
}

func setAnalysisCondition(app *v1.CanaryApp) {
	st := &app.Status
	if len(st.Checks) == 0 {
		return
	}
	c := st.Checks[len(st.Checks)-1]
	status, reason := metav1.ConditionTrue, v1.ReasonCheckPassed
	switch c.Verdict {
	case v1.CheckFail:
		status, reason = metav1.ConditionFalse, v1.ReasonCheckFailed
		if c.Reason != "" {
			reason = c.Reason // a rollout webhook failed it
		}
	case v1.CheckInconclusive:
		status, reason = metav1.ConditionUnknown, v1.ReasonCheckInconclusive
		if c.Reason != "" {
			reason = c.Reason
		}
	}
	msg := fmt.Sprintf("%s at weight %d: value %s", c.Image, c.Weight, c.Value)
	if c.Message != "" {
		msg += ": " + c.Message
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1.ConditionAnalysis, Status: status, Reason: reason, Message: msg, ObservedGeneration: app.Generation})
}

// setNotificationsCondition reports whether the providers of
// spec.notifications may serve the app; absent without any.
func setNotificationsCondition(app *v1.CanaryApp, refused error) {
	if len(app.Spec.Notifications) == 0 {
		meta.RemoveStatusCondition(&app.Status.Conditions, v1.ConditionNotifications)
		return
	}
	set := conditionSetter(app)
	if refused == nil {
		set(v1.ConditionNotifications, metav1.ConditionTrue, v1.ReasonNotificationsReady, fmt.Sprintf("%d notification provider(s) serve this app", len(app.Spec.Notifications)))
		return
	}
	reason := v1.ReasonReconcileError
	if re, ok := errors.AsType[reasonedError](refused); ok {
		reason = re.Reason()
	}
	set(v1.ConditionNotifications, metav1.ConditionFalse, reason, truncate(refused.Error()+"; nothing is sent to it", 1024))
}

func lastFailure(app *v1.CanaryApp) *v1.FailedImage {
	if n := len(app.Status.FailedImages); n > 0 {
		return &app.Status.FailedImages[n-1]
	}
	return nil
}

// writeBackCondition derives the WriteBack condition's reason and message
// from status.writeBack alone.
func writeBackCondition(app *v1.CanaryApp) (reason, msg string) {
	wb := app.Status.WriteBack
	switch {
	case wb.Pending && wb.InterruptedAttempts >= maxInterruptedAttempts:
		return v1.ReasonWriteBackCrashed, fmt.Sprintf("writing the %s to Git was interrupted %d times and is not tried again until the spec changes", outcomeText(wb), wb.InterruptedAttempts)
	case wb.Pending && wb.Error != "":
		reason = wb.ErrorReason
		if reason == "" {
			reason = v1.ReasonWriteBackFailed
		}
		next := "retrying"
		if wb.Stalled {
			next = "a person must act; tried again when the spec changes"
		}
		return reason, fmt.Sprintf("writing the %s to Git failed (attempt %d, %s): %s", outcomeText(wb), wb.Attempts, next, wb.Error)
	case wb.Pending:
		return v1.ReasonWriteBackPending, fmt.Sprintf("the %s is waiting to be written to Git", outcomeText(wb))
	case wb.PullRequestState == "merged":
		return v1.ReasonWriteBackSucceeded, fmt.Sprintf("pull request %s merged; Argo CD syncs %s", wb.PullRequestURL, wb.Image)
	case wb.PullRequestState == "closed":
		return v1.ReasonPullRequestClosed, fmt.Sprintf("pull request %s was closed without merging; the cluster stays on %s while Git still names %s", wb.PullRequestURL, app.Status.StableImage, app.Spec.Image)
	case wb.PullRequestURL != "":
		msg = fmt.Sprintf("%s proposed in %s", outcomeText(wb), wb.PullRequestURL)
	default:
		reason, msg = v1.ReasonWriteBackSucceeded, fmt.Sprintf("%s written to Git", outcomeText(wb))
		if wb.Commit != "" {
			msg += " as commit " + wb.Commit
		}
	}
	if reason == "" {
		reason = v1.ReasonPullRequestOpen
	}
	if wb.Message != "" {
		msg += ": " + wb.Message
	}
	return reason, msg
}

// setWriteBackConditions derives WriteBack, and Stalled while a write-back
// needs a person, from status.writeBack. A write-back stall outranks the
// rollout's own Stalled reason: it is what blocks the app's way forward
// (Git still names the failed image until the write-back lands).
func setWriteBackConditions(app *v1.CanaryApp) {
	wb := app.Status.WriteBack
	if wb == nil || app.Spec.GitOps == nil {
		meta.RemoveStatusCondition(&app.Status.Conditions, v1.ConditionWriteBack)
		return
	}
	reason, msg := writeBackCondition(app)
	status := metav1.ConditionTrue
	if wb.Pending || wb.PullRequestState == "closed" {
		status = metav1.ConditionFalse
	}
	gen := app.Generation
	meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{Type: v1.ConditionWriteBack, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
	if wb.Pending && (wb.Stalled || wb.InterruptedAttempts >= maxInterruptedAttempts) {
		meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{Type: v1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
}

// setReconciling mirrors Progressing into Reconciling while it is True.
func setReconciling(app *v1.CanaryApp) {
	p := meta.FindStatusCondition(app.Status.Conditions, v1.ConditionProgressing)
	if p == nil || p.Status != metav1.ConditionTrue {
		meta.RemoveStatusCondition(&app.Status.Conditions, v1.ConditionReconciling)
		return
	}
	meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{Type: v1.ConditionReconciling, Status: metav1.ConditionTrue,
		Reason: p.Reason, Message: p.Message, ObservedGeneration: p.ObservedGeneration})
}
