package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/internal/opmetrics"
	"github.com/atzedevries/canaryop/internal/rollout"
	"github.com/atzedevries/canaryop/internal/workload"
)

type reasonedError interface {
	error
	Reason() string
}

type stalledError interface {
	error
	Stalled() bool
}

const (
	writeBackMinBackoff = 5 * time.Second
	writeBackMaxBackoff = 5 * time.Minute
	// writeBackStalledRecheck is how often a write-back that needs a person
	// is tried again without a spec change: the admin may have changed a
	// credential Secret or an Application, which fires no event for the app.
	writeBackStalledRecheck = 10 * time.Minute
	// defaultWriteBackTimeout bounds one attempt (fetch, edit, push, pull
	// request) whatever the remote does.
	defaultWriteBackTimeout = 3 * time.Minute
	// maxInterruptedAttempts stops a write-back the operator did not survive
	// this often.
	maxInterruptedAttempts = 3
	// defaultPullRequestPoll is how often an open pull request is looked at.
	defaultPullRequestPoll = time.Minute
)

// DefaultWriteBackConcurrency is how many write-backs run at once: Git runs
// in a pool of its own, so a slow or hostile repository never holds the
// workers that analyse and roll back canaries. Write-backs of one branch wait
// for each other and share commits (gitops coalescing), so the pool is sized
// for many apps deciding at once, not for Git connections: with 32 workers,
// 100 outcomes of one repository land in 8 pushes (16 workers: 13), in
// BenchmarkSimultaneousOutcomes.
const DefaultWriteBackConcurrency = 32

// Argo CD Applications are read to prove where a CanaryApp's manifest lives,
// in the Argo CD namespace only (argocd/operator-rbac.yaml); Git credential
// Secrets are read in the operator's namespace only
// (config/rbac/git_credentials_role.yaml).

// setupWriteBack registers the write-back controller: a second controller
// for CanaryApps with a worker pool of its own, woken when status.writeBack
// changes.
func (r *CanaryAppReconciler) setupWriteBack(mgr ctrl.Manager) error {
	n := r.WriteBackConcurrency
	if n <= 0 {
		n = DefaultWriteBackConcurrency
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("canaryapp-writeback").
		For(&v1.CanaryApp{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, writeBackChanged{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: n})
	return r.shardedBuilder(mgr, b).Complete(r.guard(reconcile.Func(r.ReconcileWriteBack)))
}

// writeBackChanged passes updates that change status.writeBack.
type writeBackChanged struct{ predicate.Funcs }

func (writeBackChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*v1.CanaryApp)
	n, ok2 := e.ObjectNew.(*v1.CanaryApp)
	if !ok1 || !ok2 {
		return false
	}
	a, b := o.Status.WriteBack, n.Status.WriteBack
	return (a == nil) != (b == nil) || (b != nil && (a.DecidedAt != b.DecidedAt || a.Pending != b.Pending))
}

// ReconcileWriteBack writes a decided outcome of one CanaryApp back to Git.
// The rollout controller decides and applies the outcome in the cluster
// first, so Git being down or hostile never blocks or undoes a rollback; the
// pending outcome stays in status and survives restarts.
func (r *CanaryAppReconciler) ReconcileWriteBack(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	app := &v1.CanaryApp{}
	if err := r.reader().Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !app.DeletionTimestamp.IsZero() || r.Writer == nil || app.Status.WriteBack == nil || app.Spec.GitOps == nil {
		return ctrl.Result{}, nil
	}
	base := app.DeepCopy()
	defer func() {
		if err := r.saveWriteBack(ctx, base, app); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	if !app.Status.WriteBack.Pending {
		return r.followPullRequest(ctx, app)
	}
	return r.writeOutcome(ctx, base, app)
}

// saveWriteBack patches status.writeBack and the conditions derived from
// it. The rollout controller patches the same status every check interval,
// so a conflict is expected: it is retried on a fresh read as long as that
// still holds the same outcome, instead of losing what the attempt did (a
// lost result would count as an interrupted attempt).
func (r *CanaryAppReconciler) saveWriteBack(ctx context.Context, base, app *v1.CanaryApp) error {
	setWriteBackConditions(app)
	wb := app.Status.WriteBack
	return r.patchStatusCarrying(ctx, base, app,
		func(fresh *v1.CanaryApp) bool {
			// false: a newer outcome replaced this one
			return fresh.Status.WriteBack != nil && fresh.Status.WriteBack.DecidedAt.Equal(&wb.DecidedAt)
		},
		func(fresh *v1.CanaryApp) {
			fresh.Status.WriteBack = wb.DeepCopy()
			setWriteBackConditions(fresh)
		})
}

// patchStatusCarrying patches app's status. The controllers of an app
// patch the same status, so a conflict is expected: it is retried on a
// fresh read, onto which carry copies this controller's part, as long as
// still says the fresh object still wants it. base and app then become
// what was written.
func (r *CanaryAppReconciler) patchStatusCarrying(ctx context.Context, base, app *v1.CanaryApp, still func(*v1.CanaryApp) bool, carry func(*v1.CanaryApp)) error {
	err := r.patchStatus(ctx, base, app)
	for i := 0; i < 5 && apierrors.IsConflict(err); i++ {
		fresh := &v1.CanaryApp{}
		if err := r.reader().Get(ctx, client.ObjectKeyFromObject(app), fresh); err != nil {
			return err
		}
		if !still(fresh) {
			return nil
		}
		freshBase := fresh.DeepCopy()
		carry(fresh)
		err = r.patchStatus(ctx, freshBase, fresh)
		if err == nil {
			*base, *app = *fresh.DeepCopy(), *fresh
		}
	}
	return err
}

// writeOutcome makes one attempt at a pending outcome, unless backoff, a
// stall or the crash breaker says to wait.
func (r *CanaryAppReconciler) writeOutcome(ctx context.Context, base, app *v1.CanaryApp) (ctrl.Result, error) {
	wb := app.Status.WriteBack
	now := r.now()
	if wb.AttemptStartedAt != nil {
		// An attempt began and never ended: the operator died during it.
		wb.AttemptStartedAt = nil
		wb.InterruptedAttempts++
	}
	if wait := r.writeBackWait(app, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if wb.InterruptedAttempts >= maxInterruptedAttempts && wb.AttemptGeneration == app.Generation {
		return ctrl.Result{}, nil
	}
	if err := r.verifyOutcome(ctx, app); err != nil {
		r.recordWriteBackError(ctx, app, err)
		return ctrl.Result{RequeueAfter: r.writeBackWait(app, r.now())}, nil
	}
	// Persist the start of the attempt before it runs, so an attempt that
	// kills the process is counted after the restart.
	started := metav1.NewTime(now)
	wb.AttemptStartedAt = &started
	wb.AttemptGeneration = app.Generation
	if err := r.saveWriteBack(ctx, base, app); err != nil {
		return ctrl.Result{}, err
	}
	*base = *app.DeepCopy()
	wb = app.Status.WriteBack // the patch decoded a new status

	res, err := r.attempt(ctx, app)
	wb.AttemptStartedAt = nil
	at := metav1.NewTime(r.now())
	wb.LastAttemptAt = &at
	wb.Attempts++
	if err != nil {
		if errors.Is(err, gitops.ErrPanic) {
			wb.InterruptedAttempts++
		}
		r.recordWriteBackError(ctx, app, err)
		return ctrl.Result{RequeueAfter: r.writeBackWait(app, r.now())}, nil
	}
	wb.Pending, wb.Error, wb.ErrorReason, wb.Stalled, wb.InterruptedAttempts = false, "", "", false, 0
	wb.Commit = res.Commit
	wb.PullRequestURL = res.PullRequestURL
	wb.PullRequestState = res.PullRequestState
	wb.PullRequest = res.PullRequest
	wb.Message = res.Message
	opmetrics.WriteBack(app, "ok")
	reason, msg := writeBackCondition(app)
	r.notify(ctx, app, rollout.Event{Reason: reason, Message: msg})
	if res.PullRequestURL != "" {
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	return ctrl.Result{}, nil
}

// attempt runs the writer under a deadline and turns a panic into an
// interrupted attempt instead of a crash of the whole operator.
func (r *CanaryAppReconciler) attempt(ctx context.Context, app *v1.CanaryApp) (res writeResult, err error) {
	timeout := r.WriteBackTimeout
	if timeout <= 0 {
		timeout = defaultWriteBackTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			ctrl.LoggerFrom(ctx).Error(fmt.Errorf("%v", p), "Git write-back panicked")
			app.Status.WriteBack.InterruptedAttempts++
			err = errors.New("the write-back stopped on an internal error")
		}
	}()
	out, err := r.Writer.Write(ctx, app)
	return writeResult{Commit: out.Commit, PullRequestURL: out.PullRequestURL, PullRequestState: out.PullRequestState, PullRequest: out.PullRequest, Message: out.Message}, err
}

type writeResult struct {
	Commit, PullRequestURL, PullRequestState, Message string
	PullRequest                                       *v1.PullRequestRef
}

// writeBackWait is how long to wait before the next attempt: backoff after
// errors, the stalled recheck after errors a person must fix (at once after
// a spec change).
func (r *CanaryAppReconciler) writeBackWait(app *v1.CanaryApp, now time.Time) time.Duration {
	wb := app.Status.WriteBack
	if wb.LastAttemptAt == nil || wb.Attempts == 0 {
		return 0
	}
	d := writeBackBackoff(wb.Attempts)
	if wb.Stalled || wb.InterruptedAttempts >= maxInterruptedAttempts {
		if wb.AttemptGeneration != app.Generation {
			return 0
		}
		d = writeBackStalledRecheck
	}
	return wb.LastAttemptAt.Add(d).Sub(now)
}

func (r *CanaryAppReconciler) recordWriteBackError(ctx context.Context, app *v1.CanaryApp, err error) {
	wb := app.Status.WriteBack
	wb.ErrorReason = v1.ReasonWriteBackFailed
	if re, ok := errors.AsType[reasonedError](err); ok {
		wb.ErrorReason = re.Reason()
	}
	se, ok := errors.AsType[stalledError](err)
	wb.Stalled = ok && se.Stalled()
	wb.Error = truncate(err.Error(), 1024)
	if wb.LastAttemptAt == nil {
		at := metav1.NewTime(r.now())
		wb.LastAttemptAt = &at
		wb.Attempts++
	}
	opmetrics.WriteBack(app, "error")
	reason, msg := writeBackCondition(app)
	r.notify(ctx, app, rollout.Event{Warning: true, Reason: reason, Message: "Git write-back failed: " + msg})
}

// unverifiedOutcome is an outcome in status that the cluster does not back.
type unverifiedOutcome struct{ msg string }

func (e *unverifiedOutcome) Error() string  { return e.msg }
func (e *unverifiedOutcome) Reason() string { return v1.ReasonUnverifiedOutcome }
func (e *unverifiedOutcome) Stalled() bool  { return true }

// verifyOutcome checks that the image to write is what the app's own
// primary Deployment runs. Whoever can write canaryapps/status could forge
// status.writeBack; the Deployment is the operator's, so a forged outcome
// cannot name an image the app does not run.
func (r *CanaryAppReconciler) verifyOutcome(ctx context.Context, app *v1.CanaryApp) error {
	wb := app.Status.WriteBack
	if wb.Outcome == v1.OutcomeApprovalRequested {
		return r.verifyApprovalRequest(ctx, app)
	}
	d := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: app.Namespace, Name: workload.PrimaryName(app)}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return &unverifiedOutcome{msg: "the outcome is not written: the app has no primary Deployment"}
		}
		return fmt.Errorf("reading the primary Deployment: %w", err)
	}
	if !metav1.IsControlledBy(d, app) || workload.Image(d) != wb.Image {
		return &unverifiedOutcome{msg: fmt.Sprintf("the outcome is not written: the app's primary Deployment does not run %s", wb.Image)}
	}
	if wb.Outcome == v1.OutcomeRolledBack && (wb.FailedImage == "" || wb.FailedImage == wb.Image || !app.IsFailedImage(wb.FailedImage)) {
		return &unverifiedOutcome{msg: "the outcome is not written: its failed image is not one this app rolled back"}
	}
	if a := app.Status.LastAction; wb.Outcome == v1.OutcomeRetryAllowed && (a == nil || a.Action != v1.ActionRetry || a.Image != wb.FailedImage) {
		return &unverifiedOutcome{msg: "the outcome is not written: no retry request of this app allowed its image"}
	}
	return nil
}

// verifyApprovalRequest checks that the image to propose is the canary
// the app's own canary Deployment runs and that waits at the gate.
func (r *CanaryAppReconciler) verifyApprovalRequest(ctx context.Context, app *v1.CanaryApp) error {
	wb := app.Status.WriteBack
	if a := app.Status.Approval; a == nil || a.Image != wb.Image {
		return &unverifiedOutcome{msg: "the approval request is not written: no canary of this image waits at the gate"}
	}
	d := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: app.Namespace, Name: workload.CanaryName(app)}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return &unverifiedOutcome{msg: "the approval request is not written: the app has no canary Deployment"}
		}
		return fmt.Errorf("reading the canary Deployment: %w", err)
	}
	if !metav1.IsControlledBy(d, app) || workload.Image(d) != wb.Image {
		return &unverifiedOutcome{msg: fmt.Sprintf("the approval request is not written: the app's canary Deployment does not run %s", wb.Image)}
	}
	return nil
}

// followPullRequest tracks an open pull request until it is merged (Argo CD
// then syncs the outcome) or closed unmerged (the cluster stays on the
// stable image; status says so). It asks GitHub at most once per poll
// interval, backs off on errors and waits as long as a rate limit says: one
// shared token serves every app.
func (r *CanaryAppReconciler) followPullRequest(ctx context.Context, app *v1.CanaryApp) (ctrl.Result, error) {
	wb := app.Status.WriteBack
	if wb.PullRequestURL == "" || wb.PullRequestState != "open" {
		return ctrl.Result{}, nil
	}
	now := r.now()
	if wait := r.nextPoll(wb).Sub(now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	state, err := r.Writer.PullRequestState(ctx, app)
	at := metav1.NewTime(now)
	wb.PullRequestCheckedAt = &at
	if err != nil {
		wb.PullRequestPollErrors++
		wait := r.nextPoll(wb).Sub(now)
		if d, ok := gitops.RetryAfter(err); ok && d > wait {
			wait = d
			wb.PullRequestCheckedAt = &metav1.Time{Time: now.Add(d - r.pullRequestPoll())}
		}
		ctrl.LoggerFrom(ctx).Info("Could not read pull request state", "url", wb.PullRequestURL, "retryIn", wait, "error", err.Error())
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	wb.PullRequestPollErrors = 0
	if state == wb.PullRequestState {
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	wb.PullRequestState = state
	switch state {
	case "closed":
		reason, msg := writeBackCondition(app)
		r.notify(ctx, app, rollout.Event{Warning: true, Reason: reason, Message: msg})
	case "merged":
		_, msg := writeBackCondition(app)
		r.notify(ctx, app, rollout.Event{Reason: v1.ReasonPullRequestMerged, Message: msg})
	}
	if state == "open" {
		return ctrl.Result{RequeueAfter: r.pullRequestPoll()}, nil
	}
	return ctrl.Result{}, nil
}

// maxPullRequestPoll bounds the poll interval after errors.
const maxPullRequestPoll = 30 * time.Minute

// nextPoll is when an open pull request is next asked about: one poll
// interval after the last look (or the write that opened it), doubled per
// failed poll in a row.
func (r *CanaryAppReconciler) nextPoll(wb *v1.WriteBackStatus) time.Time {
	last := wb.PullRequestCheckedAt
	if last == nil {
		last = wb.LastAttemptAt
	}
	if last == nil {
		return time.Time{}
	}
	d := r.pullRequestPoll()
	for i := int32(0); i < wb.PullRequestPollErrors && d < maxPullRequestPoll; i++ {
		d *= 2
	}
	return last.Add(min(d, maxPullRequestPoll))
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
	switch wb.Outcome {
	case v1.OutcomeRolledBack:
		return fmt.Sprintf("rollback of %s to %s", wb.FailedImage, wb.Image)
	case v1.OutcomeRetryAllowed:
		return fmt.Sprintf("retry of %s", wb.FailedImage)
	case v1.OutcomeApprovalRequested:
		return fmt.Sprintf("approval request of %s", wb.Image)
	}
	return fmt.Sprintf("promotion of %s", wb.Image)
}
