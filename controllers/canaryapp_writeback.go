package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/opmetrics"
	"github.com/atzedevries/canaryop/internal/rollout"
)

// ReasonedError is a write-back error with a condition reason a person can
// act on, such as NoCredentials or RepositoryUnknown.
type ReasonedError interface {
	error
	Reason() string
}

const (
	writeBackMinBackoff = 5 * time.Second
	writeBackMaxBackoff = 5 * time.Minute
	// defaultPullRequestPoll is how often an open pull request is looked at.
	defaultPullRequestPoll = time.Minute
)

// Argo CD Applications are read to discover where a CanaryApp's manifest
// lives; Git credential Secrets are read in the operator's namespace only
// (config/rbac/git_credentials_role.yaml).
// +kubebuilder:rbac:groups=argoproj.io,resources=applications,verbs=get;list

// reconcileWriteBack writes a decided outcome back to Git. It runs after the
// in-cluster rollout is applied, so Git being down never blocks or undoes a
// rollback; the pending outcome stays in status and survives restarts.
func (r *CanaryAppReconciler) reconcileWriteBack(ctx context.Context, app *v1.CanaryApp, _ *observation) (ctrl.Result, error) {
	wb := app.Status.WriteBack
	if r.Writer == nil || wb == nil || app.Spec.GitOps == nil {
		return ctrl.Result{}, nil
	}
	if !wb.Pending {
		return r.followPullRequest(ctx, app)
	}
	now := r.now()
	if wb.LastAttemptAt != nil && wb.Attempts > 0 {
		if wait := wb.LastAttemptAt.Add(writeBackBackoff(wb.Attempts)).Sub(now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}

	res, err := r.Writer.Write(ctx, app)
	at := metav1.NewTime(r.now())
	wb.LastAttemptAt = &at
	wb.Attempts++
	if err != nil {
		reason := v1.ReasonWriteBackFailed
		if re, ok := errors.AsType[ReasonedError](err); ok {
			reason = re.Reason()
		}
		wb.Error = truncate(err.Error(), 1024)
		opmetrics.WriteBack(app, "error")
		r.setWriteBackCondition(app, metav1.ConditionFalse, reason, fmt.Sprintf("writing the %s to Git failed (attempt %d, retrying): %s", outcomeText(wb), wb.Attempts, wb.Error))
		r.notify(ctx, app, rollout.Event{Warning: true, Reason: reason, Message: "Git write-back failed: " + wb.Error})
		return ctrl.Result{RequeueAfter: writeBackBackoff(wb.Attempts)}, nil
	}
	wb.Pending = false
	wb.Error = ""
	wb.Commit = res.Commit
	wb.PullRequestURL = res.PullRequestURL
	wb.PullRequestState = res.PullRequestState
	wb.Message = res.Message
	opmetrics.WriteBack(app, "ok")
	reason, msg := v1.ReasonWriteBackSucceeded, fmt.Sprintf("%s written to Git", outcomeText(wb))
	switch {
	case res.PullRequestURL != "":
		reason, msg = v1.ReasonPullRequestOpen, fmt.Sprintf("%s proposed in %s", outcomeText(wb), res.PullRequestURL)
	case res.Commit != "":
		msg += " as commit " + res.Commit
	}
	if res.Message != "" {
		msg += ": " + res.Message
	}
	r.setWriteBackCondition(app, metav1.ConditionTrue, reason, msg)
	r.notify(ctx, app, rollout.Event{Reason: reason, Message: msg})
	if res.PullRequestURL != "" {
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	return ctrl.Result{}, nil
}

// followPullRequest tracks an open pull request until it is merged (Argo CD
// then syncs the outcome) or closed unmerged (the cluster stays on the
// stable image; status says so).
func (r *CanaryAppReconciler) followPullRequest(ctx context.Context, app *v1.CanaryApp) (ctrl.Result, error) {
	wb := app.Status.WriteBack
	if wb.PullRequestURL == "" || wb.PullRequestState != "open" {
		return ctrl.Result{}, nil
	}
	state, err := r.Writer.PullRequestState(ctx, app)
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("Could not read pull request state", "url", wb.PullRequestURL, "error", err.Error())
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	if state == wb.PullRequestState {
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	wb.PullRequestState = state
	switch state {
	case "merged":
		r.setWriteBackCondition(app, metav1.ConditionTrue, v1.ReasonWriteBackSucceeded, fmt.Sprintf("pull request %s merged; Argo CD syncs %s", wb.PullRequestURL, wb.Image))
	case "closed":
		msg := fmt.Sprintf("pull request %s was closed without merging; the cluster stays on %s while Git still names %s", wb.PullRequestURL, app.Status.StableImage, app.Spec.Image)
		r.setWriteBackCondition(app, metav1.ConditionFalse, v1.ReasonPullRequestClosed, msg)
		r.notify(ctx, app, rollout.Event{Warning: true, Reason: v1.ReasonPullRequestClosed, Message: msg})
	}
	if state == "open" {
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	return ctrl.Result{}, nil
}

func (r *CanaryAppReconciler) setWriteBackCondition(app *v1.CanaryApp, s metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: v1.ConditionWriteBack, Status: s, Reason: reason, Message: msg, ObservedGeneration: app.Generation,
	})
}

// writeBackBackoff doubles from 5s up to 5m with the number of attempts.
func writeBackBackoff(attempts int32) time.Duration {
	d := writeBackMinBackoff
	for i := int32(1); i < attempts && d < writeBackMaxBackoff; i++ {
		d *= 2
	}
	return min(d, writeBackMaxBackoff)
}

func (r *CanaryAppReconciler) pullRequestPoll() time.Duration {
	if r.PullRequestPoll > 0 {
		return r.PullRequestPoll
	}
	return defaultPullRequestPoll
}

// outcomeText names an outcome for people: "promotion of app:v2" or
// "rollback of app:v3 to app:v2".
func outcomeText(wb *v1.WriteBackStatus) string {
	if wb.Outcome == v1.OutcomeRolledBack {
		return fmt.Sprintf("rollback of %s to %s", wb.FailedImage, wb.Image)
	}
	return fmt.Sprintf("promotion of %s", wb.Image)
}
