// Package controllers holds the CanaryApp reconciler. Reconcile observes the
// cluster, asks the pure planner in internal/rollout what to do next, applies
// that desired state through small seams (workloads, traffic router, metrics
// provider, Git writer) and records the result in status.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/internal/admission"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/hooks"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/opmetrics"
	"github.com/atzedevries/canaryop/internal/rollout"
	"github.com/atzedevries/canaryop/internal/safetext"
	"github.com/atzedevries/canaryop/internal/shard"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/workload"
)

// CanaryAppReconciler reconciles CanaryApp objects.
type CanaryAppReconciler struct {
	client.Client
	// APIReader reads the CanaryApp itself, uncached: a reconcile that
	// started from a status older than the last one written would act
	// twice on one decision (route traffic back to a removed canary, write
	// an outcome to Git again). Nil falls back to Client.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Router sends a share of an app's traffic to its canary.
	Router traffic.Router
	// Watches are the kinds the routers own (routers.Owned), watched like
	// the Deployments.
	Watches []client.Object
	Metrics metrics.Provider
	// Writer writes decided outcomes back to Git; nil disables write-back.
	Writer gitops.Writer
	// CommitStatuses reports each canary's verdict on the commit of its
	// change; nil reports none.
	CommitStatuses gitops.CommitStatuses
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PullRequestPoll is how often an open write-back pull request is
	// looked at; one minute when zero.
	PullRequestPoll time.Duration
	// MaxConcurrentReconciles bounds parallel reconciles;
	// DefaultMaxConcurrentReconciles when zero.
	MaxConcurrentReconciles int
	// WriteBackConcurrency bounds parallel Git write-backs, which run in a
	// controller of their own; 2 when zero.
	WriteBackConcurrency int
	// WriteBackTimeout bounds one write-back attempt; 3 minutes when zero.
	WriteBackTimeout time.Duration
	// PodOptions are the admin's pod defaults (workload.RunAsNonRoot).
	PodOptions []workload.Option
	// MetricTemplates are the admin's named queries; nil has none.
	MetricTemplates MetricTemplates
	// Notifier sends transitions to the admin's notification providers;
	// nil sends none.
	Notifier notify.Notifier
	// Webhooks calls the admin's webhook targets an app's
	// spec.analysis.webhooks name; nil has none, so such an app holds.
	Webhooks hooks.Caller

	// unchanged remembers which owned objects were found to need no apply
	// (apply.Memo); nil remembers nothing.
	unchanged *apply.Memo
	// gate caps the canaries progressing at once (canaryapp_queue.go); nil
	// is no cap.
	gate *admission.Gate
	// shards, when set, limits this replica to the apps of the shards it
	// holds (canaryapp_shard.go).
	shards *shard.Manager
}

// +kubebuilder:rbac:groups=canary.atze.io,resources=canaryapps,verbs=get;list;watch
// +kubebuilder:rbac:groups=canary.atze.io,resources=canaryapps/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler and its watches.
func (r *CanaryAppReconciler) SetupWithManager(mgr ctrl.Manager) error {
	n := r.MaxConcurrentReconciles
	if n <= 0 {
		n = DefaultMaxConcurrentReconciles
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1.CanaryApp{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&policyv1.PodDisruptionBudget{})
	for _, obj := range r.Watches {
		b = b.Owns(obj)
	}
	b = b.WithOptions(controller.Options{MaxConcurrentReconciles: n})
	b, err := r.setupQueue(mgr, b)
	if err != nil {
		return err
	}
	err = r.shardedBuilder(mgr, b).Complete(r.guard(r))
	if err != nil {
		return err
	}
	for _, seam := range []any{r.Notifier, r.Webhooks} {
		if run, ok := seam.(manager.Runnable); ok {
			if err := mgr.Add(run); err != nil {
				return err
			}
		}
	}
	if r.CommitStatuses != nil {
		if err := r.setupCommitStatuses(mgr); err != nil {
			return err
		}
	}
	if r.Writer == nil {
		return nil
	}
	return r.setupWriteBack(mgr)
}

// apply writes an owned object unless the cache shows it already holds
// obj (apply.Unchanged: the fields canaryop owns, so a drifted one is still
// written), so that a steady app costs no writes; a create that meets an
// object the cache had not seen is re-read uncached, so it is never
// adopted.
func (r *CanaryAppReconciler) apply(ctx context.Context, app *v1.CanaryApp, obj any) error {
	if apply.Unchanged(ctx, r.Client, app, obj, apply.WithMemo(r.unchanged)) {
		return nil
	}
	return apply.Apply(ctx, r.Client, app, obj, apply.WithAPIReader(r.APIReader))
}

// reader reads uncached (see APIReader): the CanaryApp, and a Deployment
// the cache should have and has not.
func (r *CanaryAppReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *CanaryAppReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile moves one CanaryApp one step closer to its spec.
func (r *CanaryAppReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	app := &v1.CanaryApp{}
	if err := r.reader().Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			opmetrics.Forget(req.Namespace, req.Name)
			gone := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
			r.unchanged.Forget(req.Namespace, workload.ServiceName(gone), workload.PrimaryName(gone), workload.CanaryName(gone),
				workload.TrackServiceName(gone, workload.TrackPrimary), workload.TrackServiceName(gone, workload.TrackCanary))
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !app.DeletionTimestamp.IsZero() {
		// Owned objects go with the app through their owner references.
		return ctrl.Result{}, nil
	}

	base := app.DeepCopy()
	obs := &observation{}
	defer func() {
		setConditions(app, obs)
		if obs.err == nil && retErr == nil {
			// The status now describes this generation; after an error
			// it still describes the last one that completed.
			app.Status.ObservedGeneration = app.Generation
		}
		opmetrics.Observe(app)
		if err := r.patchStatus(ctx, base, app); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()

	for _, step := range []func(context.Context, *v1.CanaryApp, *observation) (ctrl.Result, error){
		r.reconcileService,
		r.reconcileRollout,
		r.reconcileNotifications,
	} {
		res, err := step(ctx, app, obs)
		if err != nil {
			if fe, ok := errors.AsType[*apply.ForeignObjectError](err); ok {
				obs.foreign = fe
				log.Info("Refusing to adopt an object this CanaryApp does not own", "object", fe.Error())
				// A person must act. Removing the foreign object fires no
				// event for this app (it owns nothing there), so look again
				// now and then instead of waiting for the next resync.
				return ctrl.Result{RequeueAfter: foreignObjectRecheck}, nil
			}
			if ne, ok := errors.AsType[*traffic.NotEnabledError](err); ok {
				// Only a new spec or an operator restart changes this,
				// and either reconciles the app again.
				obs.routerNotEnabled = ne
				return ctrl.Result{}, nil
			}
			obs.err = err
			return ctrl.Result{}, err
		}
		result = lowestRequeue(result, res)
	}
	return result, nil
}

// foreignObjectRecheck is how often a CanaryApp stalled on a foreign object
// looks whether the object is gone.
const foreignObjectRecheck = time.Minute

// observation carries what the sub-reconcilers saw to the status functions.
type observation struct {
	primaryAvailable bool
	foreign          *apply.ForeignObjectError
	// routeRefused: the route policy left some of spec.gateways,
	// spec.hosts or spec.traffic.gatewayapi.parentRefs out of the routes.
	routeRefused *traffic.RouteNotAllowedError
	// routerNotEnabled: spec.traffic.provider names a router the operator
	// does not run; nothing was applied.
	routerNotEnabled *traffic.NotEnabledError
	// template: spec.template is unusable (unknown field, or the API
	// server refused the Deployments built from it).
	template error
	// notifications: why a provider of spec.notifications may not serve
	// the app, nil when all may.
	notifications error
	// queued: the cap on canaries progressing at once holds the new image
	// back, and why.
	queued *admission.Decision
	// err is the error that ended the reconcile early; it is retried.
	err error
}

func lowestRequeue(a, b ctrl.Result) ctrl.Result {
	if b.RequeueAfter > 0 && (a.RequeueAfter == 0 || b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

func (r *CanaryAppReconciler) patchStatus(ctx context.Context, base, app *v1.CanaryApp) error {
	if equalStatus(base, app) {
		return nil
	}
	// The optimistic lock makes a patch computed from an object someone
	// changed meanwhile fail and retry, instead of undoing their change.
	if err := r.Status().Patch(ctx, app, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching status of %s: %w", klog.KObj(app), err)
	}
	return nil
}

// reconcileService applies the Services the app's router routes to.
func (r *CanaryAppReconciler) reconcileService(ctx context.Context, app *v1.CanaryApp, _ *observation) (ctrl.Result, error) {
	services, err := r.Router.Services(app)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, svc := range services {
		if err := r.apply(ctx, app, svc); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// reconcileRollout observes both Deployments, runs an analysis check when
// one is due, plans, and applies the plan: primary, canary, routing, then
// removal of a canary that is no longer wanted (after traffic left it).
func (r *CanaryAppReconciler) reconcileRollout(ctx context.Context, app *v1.CanaryApp, obs *observation) (ctrl.Result, error) {
	primary, err := r.observeDeployment(ctx, app, workload.PrimaryName(app), app.Status.StableImage != "")
	if err != nil {
		return ctrl.Result{}, err
	}
	canary, err := r.observeDeployment(ctx, app, workload.CanaryName(app), app.Status.CanaryImage != "")
	if err != nil {
		return ctrl.Result{}, err
	}
	in := rollout.Input{Now: r.now(), App: app, Analysis: app.Spec.EffectiveAnalysis(), Primary: primary, Canary: canary}
	in.Queued, obs.queued = r.admit(app, in.Now)
	r.observeAnalysis(ctx, app, &in)
	plan := rollout.Plan(in)

	conditions := app.Status.Conditions
	app.Status = plan.Status
	app.Status.Conditions = conditions
	for _, e := range plan.Events {
		r.notify(ctx, app, e)
	}
	obs.primaryAvailable = primary.Available && primary.Image == app.Status.StableImage

	if err := r.applyWorkloads(ctx, app, plan); err != nil {
		if workload.IsTemplateError(err) {
			// A person must fix the template; nothing else is applied
			// until then. Look again now and then: an admission webhook
			// or a quota may be what refused it.
			obs.template = err
			return ctrl.Result{RequeueAfter: foreignObjectRecheck}, nil
		}
		return ctrl.Result{}, err
	}
	if err := r.Router.Route(ctx, app, plan.Weight); err != nil {
		refused, ok := errors.AsType[*traffic.RouteNotAllowedError](err)
		if !ok {
			return ctrl.Result{}, fmt.Errorf("routing %d%% to the canary: %w", plan.Weight, err)
		}
		// The router applied what the policy allows, so the canary goes
		// on for the app's own host; a person must fix the rest.
		obs.routeRefused = refused
	}
	if plan.CanaryImage == "" && canary.Exists {
		if err := apply.Delete(ctx, r.Client, app, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: workload.CanaryName(app)}}); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: plan.RequeueAfter}, nil
}

// observeDeployment reads the Deployment name from the cache. The cache
// holds only objects labelled as canaryop's (CacheOptions), so when status
// says the Deployment should exist (expected) and the cache does not have
// it, it is read uncached: someone may have removed its labels, and the
// plan must not take a running primary for a missing one. Its next apply
// puts the labels back.
func (r *CanaryAppReconciler) observeDeployment(ctx context.Context, app *v1.CanaryApp, name string, expected bool) (rollout.Deployment, error) {
	d := &appsv1.Deployment{}
	key := types.NamespacedName{Namespace: app.Namespace, Name: name}
	err := r.Get(ctx, key, d)
	if apierrors.IsNotFound(err) && expected {
		err = r.reader().Get(ctx, key, d)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return rollout.Deployment{}, nil
		}
		return rollout.Deployment{}, fmt.Errorf("reading Deployment %s/%s: %w", app.Namespace, name, err)
	}
	if !metav1.IsControlledBy(d, app) {
		return rollout.Deployment{}, &apply.ForeignObjectError{
			GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespace: d.Namespace, Name: d.Name,
			OwnerKind: "CanaryApp", OwnerNamespace: app.Namespace, OwnerName: app.Name,
		}
	}
	image := workload.Image(d)
	return rollout.Deployment{Exists: true, Image: image, Available: workload.Available(d, image), Failed: workload.Failed(d)}, nil
}

// runCheck runs the analysis query. The query has the app's check interval
// as its deadline, at most metrics.MaxTimeout, so that a hanging Prometheus
// never delays the next check or holds a worker other tenants need.
//
// With analysis.metrics every metric is judged (runMetricChecks) and the
// check records each; the original spec (prometheusQuery alone) keeps the
// original check.
func (r *CanaryAppReconciler) runCheck(ctx context.Context, app *v1.CanaryApp, now time.Time) *v1.AnalysisCheck {
	a := app.Spec.EffectiveAnalysis()
	timeout := min(max(a.CheckInterval, 2*time.Second), metrics.MaxTimeout)
	if app.Spec.Analysis != nil && len(app.Spec.Analysis.Metrics) > 0 {
		c := metricsCheck(app, now, r.runMetricChecks(ctx, app, timeout))
		opmetrics.CheckDone(app, c.Verdict, c.Value)
		ctrl.LoggerFrom(ctx).V(1).Info("Analysis check", "weight", app.Status.CanaryWeight, "verdict", c.Verdict, "value", c.Value, "message", c.Message)
		return c
	}
	res := r.Metrics.Check(ctx, metrics.Query{URL: app.Spec.PrometheusURL, Expr: app.Spec.PrometheusQuery,
		Timeout: timeout, Namespace: app.Namespace})
	opmetrics.CheckDone(app, res.Verdict, res.Value)
	ctrl.LoggerFrom(ctx).V(1).Info("Analysis check", "weight", app.Status.CanaryWeight, "verdict", res.Verdict, "value", res.Value, "message", res.Message)
	return &v1.AnalysisCheck{
		Time:    metav1Time(now),
		Image:   app.Status.CanaryImage,
		Weight:  app.Status.CanaryWeight,
		Value:   res.Value,
		Verdict: res.Verdict,
		Message: truncate(res.Message, 256),
		Reason:  res.Reason,
	}
}

// observeAnalysis runs what the planner needs evidence from now: the
// pre-rollout webhooks, or a check with the rollout webhooks. A check
// Prometheus already failed calls no webhook, so a slow one never delays
// that rollback.
func (r *CanaryAppReconciler) observeAnalysis(ctx context.Context, app *v1.CanaryApp, in *rollout.Input) {
	if rollout.PreRolloutDue(*in) {
		h := r.callWebhooks(ctx, app, v1.WebhookPreRollout)
		in.PreRollout = &h
	}
	if !rollout.CheckDue(*in) {
		return
	}
	in.Check = r.runCheck(ctx, app, in.Now)
	if in.Check.Verdict != v1.CheckFail && len(app.Spec.WebhooksOf(v1.WebhookRollout)) > 0 {
		h := r.callWebhooks(ctx, app, v1.WebhookRollout)
		in.RolloutHooks = &h
	}
}

// callWebhooks calls app's webhooks of type t with the deadline of a check
// (see runCheck).
func (r *CanaryAppReconciler) callWebhooks(ctx context.Context, app *v1.CanaryApp, t v1.WebhookType) rollout.HookResult {
	if r.Webhooks == nil {
		return rollout.HookResult{Reason: v1.ReasonWebhookNotFound, Message: fmt.Sprintf("%s webhook not called: the operator has no webhook targets", t)}
	}
	a := app.Spec.EffectiveAnalysis()
	ctx, cancel := context.WithTimeout(ctx, min(max(a.CheckInterval, 2*time.Second), metrics.MaxTimeout))
	defer cancel()
	h := r.Webhooks.Call(ctx, app, t)
	h.Message = truncate(h.Message, 256)
	ctrl.LoggerFrom(ctx).V(1).Info("Analysis webhooks", "type", t, "passed", h.Passed, "message", h.Message)
	return h
}

// truncate cuts a status message to n characters (see safetext.Truncate).
func truncate(s string, n int) string { return safetext.Truncate(s, n) }

// notify records a transition as a Kubernetes Event and logs it: the one
// place both happen, so they never disagree.
func (r *CanaryAppReconciler) notify(ctx context.Context, app *v1.CanaryApp, e rollout.Event) {
	log := ctrl.LoggerFrom(ctx)
	eventType := corev1.EventTypeNormal
	if e.Warning {
		eventType = corev1.EventTypeWarning
	}
	log.Info(e.Message, "reason", e.Reason)
	if e.Reason == v1.ReasonPromoted || e.Reason == v1.ReasonRolledBack {
		opmetrics.Outcome(app, e.Reason)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(app, nil, eventType, e.Reason, "Reconcile", "%s", e.Message)
	}
	ne, ok := notify.NewEvent(app, e, r.now())
	if ok && r.Notifier != nil {
		r.Notifier.Notify(ctx, app, ne)
	}
	if ok && r.Webhooks != nil && (ne.Kind == v1.EventPromoted || ne.Kind == v1.EventRolledBack) {
		r.Webhooks.PostRollout(ctx, app, ne)
	}
}

// reconcileNotifications asks whether the providers the app names may
// serve it, for the Notifications condition.
func (r *CanaryAppReconciler) reconcileNotifications(ctx context.Context, app *v1.CanaryApp, obs *observation) (ctrl.Result, error) {
	switch {
	case len(app.Spec.Notifications) == 0:
	case r.Notifier == nil:
		obs.notifications = noNotifier{}
	default:
		obs.notifications = r.Notifier.Check(ctx, app)
	}
	return ctrl.Result{}, nil
}

// noNotifier is the refusal of every provider by an operator built without
// a Notifier.
type noNotifier struct{}

func (noNotifier) Error() string  { return "this operator sends no notifications" }
func (noNotifier) Reason() string { return v1.ReasonNotificationProviderNotFound }
