package controllers

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/github"
	"github.com/atzedevries/canaryop/internal/commitstatus"
)

// commitStatusConcurrency is the commit status controller's worker pool:
// one short GitHub call per canary step, apart from the analysis and the
// write-back.
const commitStatusConcurrency = 4

// commitStatusTimeout bounds one attempt (reading the Application, the
// credential, one GitHub call).
const commitStatusTimeout = 30 * time.Second

// setupCommitStatuses registers the commit status controller: a third
// controller for CanaryApps, woken when the verdict its status calls for
// changes (package commitstatus).
func (r *CanaryAppReconciler) setupCommitStatuses(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("canaryapp-commitstatus").
		For(&v1.CanaryApp{}, builder.WithPredicates(verdictToReport{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: commitStatusConcurrency})
	return r.shardedBuilder(mgr, b).Complete(r.guard(reconcile.Func(r.ReconcileCommitStatus)))
}

// verdictToReport passes the apps whose status calls for a verdict that
// status.commitStatus does not hold yet, so that a restart reads (uncached)
// only the apps with something to report, not every one.
type verdictToReport struct{ predicate.Funcs }

func (verdictToReport) Create(e event.CreateEvent) bool { return toReport(e.Object) }

func (verdictToReport) Update(e event.UpdateEvent) bool { return toReport(e.ObjectNew) }

func toReport(obj client.Object) bool {
	app, ok := obj.(*v1.CanaryApp)
	if !ok {
		return false
	}
	_, ok = unreported(app)
	return ok
}

// unreported is the verdict app's status calls for when status.commitStatus
// does not hold it yet and it can be reported: a verdict of another canary
// than the one recorded only when that canary starts (its commit is
// recorded then), nothing after a refusal or for an app with nothing to
// report on.
func unreported(app *v1.CanaryApp) (commitstatus.Verdict, bool) {
	want, ok := commitstatus.Want(app)
	if !ok {
		return commitstatus.Verdict{}, false
	}
	rec := app.Status.CommitStatus
	switch {
	case rec == nil || rec.Image != want.Image:
		return want, want.State == commitstatus.Pending
	case rec.Reason == v1.ReasonCommitStatusNotApplicable, rec.Reason == v1.ReasonCommitStatusNotPermitted:
		return commitstatus.Verdict{}, false
	}
	return want, rec.State != want.State || rec.Description != want.Description
}

// ReconcileCommitStatus reports the verdict app's status calls for on the
// commit of its canary's change, once per change of verdict. The commit is
// recorded in status.commitStatus when the canary starts, so the verdict
// lands on the same commit after restarts and after the write-back's own
// commits moved the branch on.
func (r *CanaryAppReconciler) ReconcileCommitStatus(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	app := &v1.CanaryApp{}
	if err := r.reader().Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !app.DeletionTimestamp.IsZero() || r.CommitStatuses == nil {
		return ctrl.Result{}, nil
	}
	want, ok := unreported(app)
	if !ok {
		return ctrl.Result{}, nil
	}
	base := app.DeepCopy()
	res := r.reportVerdict(ctx, app, want)
	return res, r.saveCommitStatus(ctx, base, app)
}

// reportVerdict records the commit of a canary that starts and posts want
// (unreported) on it, unless the last failure's backoff has not passed.
func (r *CanaryAppReconciler) reportVerdict(ctx context.Context, app *v1.CanaryApp, want commitstatus.Verdict) ctrl.Result {
	rec := app.Status.CommitStatus
	if rec == nil || rec.Image != want.Image {
		rec = &v1.CommitStatusReport{Image: want.Image, Context: commitstatus.Context(app.Namespace, app.Name)}
		app.Status.CommitStatus = rec
	}
	if wait := r.commitStatusWait(rec); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}
	}
	ctx, cancel := context.WithTimeout(ctx, commitStatusTimeout)
	defer cancel()
	change, err := r.CommitStatuses.Report(ctx, app, rec.Revision, github.Status{State: want.State, Context: rec.Context, Description: want.Description})
	if rec.Revision == "" && change.Revision != "" {
		// The commit of a canary that starts is kept, also when this
		// post failed, so that every later one goes to the same commit.
		rec.Revision, rec.Repository = change.Revision, change.Repository
	}
	if err != nil {
		return r.commitStatusFailed(ctx, app, err)
	}
	now := metav1.NewTime(r.now())
	rec.State, rec.Description, rec.ReportedAt = want.State, want.Description, &now
	rec.Attempts, rec.LastAttemptAt, rec.Reason, rec.Message = 0, nil, "", ""
	return ctrl.Result{}
}

// commitStatusFailed records a failed attempt: nothing to post, refused
// (an Event, no retry until the canary's image changes), or a failure
// retried with backoff.
func (r *CanaryAppReconciler) commitStatusFailed(ctx context.Context, app *v1.CanaryApp, err error) ctrl.Result {
	rec := app.Status.CommitStatus
	rec.Message = truncate(err.Error(), 1024)
	switch {
	case errors.Is(err, gitops.ErrNoCommitStatus):
		rec.Reason = v1.ReasonCommitStatusNotApplicable
		return ctrl.Result{}
	case gitops.IsStalled(err) && errors.Is(err, gitops.ErrNotPermitted):
		rec.Reason = v1.ReasonCommitStatusNotPermitted
		if r.Recorder != nil {
			r.Recorder.Eventf(app, nil, "Warning", v1.ReasonCommitStatusNotPermitted, "CommitStatus", "%s", rec.Message)
		}
		return ctrl.Result{}
	}
	rec.Reason = v1.ReasonCommitStatusFailed
	rec.Attempts++
	at := metav1.NewTime(r.now())
	rec.LastAttemptAt = &at
	wait := writeBackBackoff(rec.Attempts)
	if d, ok := gitops.RetryAfter(err); ok && d > wait {
		wait = d
		rec.LastAttemptAt = &metav1.Time{Time: at.Add(d - writeBackBackoff(rec.Attempts))}
	}
	ctrl.LoggerFrom(ctx).Info("Could not report the commit status", "retryIn", wait, "error", rec.Message)
	return ctrl.Result{RequeueAfter: wait}
}

// commitStatusWait is the backoff left after failed attempts.
func (r *CanaryAppReconciler) commitStatusWait(rec *v1.CommitStatusReport) time.Duration {
	if rec.Attempts == 0 || rec.LastAttemptAt == nil {
		return 0
	}
	return rec.LastAttemptAt.Add(writeBackBackoff(rec.Attempts)).Sub(r.now())
}

// saveCommitStatus patches status.commitStatus. The rollout controller
// patches the same status every check interval, so a conflict is retried
// on a fresh read as long as that still calls for the same canary's
// record.
func (r *CanaryAppReconciler) saveCommitStatus(ctx context.Context, base, app *v1.CanaryApp) error {
	rec := app.Status.CommitStatus
	if rec == nil {
		return nil
	}
	return r.patchStatusCarrying(ctx, base, app,
		func(fresh *v1.CanaryApp) bool {
			cur := fresh.Status.CommitStatus
			return cur == nil || cur.Image == rec.Image
		},
		func(fresh *v1.CanaryApp) { fresh.Status.CommitStatus = rec.DeepCopy() })
}
