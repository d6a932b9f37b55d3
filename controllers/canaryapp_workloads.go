package controllers

import (
	"context"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/rollout"
	"github.com/atzedevries/canaryop/internal/workload"
)

// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete

// ReplicasHandoffManager is the field manager that holds spec.replicas of
// a Deployment for the moment between canaryop letting go of it (the app
// got spec.autoscaling) and the HPA's first scale, so that the field is not
// removed and defaulted to 1 (server-side apply removes a field its last
// owner stops applying).
const ReplicasHandoffManager = "canaryop-replicas-handoff"

// applyWorkloads applies what runs the app's pods: the primary Deployment,
// the canary Deployment while the plan wants one, and their autoscalers and
// disruption budget. An unusable spec.template is an error wrapping
// v1.ErrTemplate: found by workload.CheckTemplate, or refused by the API
// server as invalid (its message names the field).
func (r *CanaryAppReconciler) applyWorkloads(ctx context.Context, app *v1.CanaryApp, plan rollout.Result) error {
	if err := workload.CheckTemplate(app); err != nil {
		return err
	}
	if err := r.applyDeployment(ctx, app, workload.TrackPrimary, workload.PrimaryDeployment(app, plan.PrimaryImage, r.PodOptions...)); err != nil {
		return err
	}
	if plan.CanaryImage != "" {
		if err := r.applyDeployment(ctx, app, workload.TrackCanary, workload.CanaryDeployment(app, plan.CanaryImage, r.PodOptions...)); err != nil {
			return err
		}
	}
	if err := r.applyOrDelete(ctx, app, workload.HPA(app, workload.TrackPrimary), hpa(app, workload.TrackPrimary)); err != nil {
		return err
	}
	canaryHPA := workload.HPA(app, workload.TrackCanary)
	if plan.CanaryImage == "" {
		canaryHPA = nil
	}
	if err := r.applyOrDelete(ctx, app, canaryHPA, hpa(app, workload.TrackCanary)); err != nil {
		return err
	}
	return r.applyOrDelete(ctx, app, workload.PDB(app), &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: workload.PDBName(app)}})
}

func hpa(app *v1.CanaryApp, t workload.Track) client.Object {
	return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: workload.HPAName(app, t)}}
}

// applyOrDelete applies ac, or deletes obj when ac is nil (the spec no
// longer asks for it). ac is a typed nil pointer when absent.
func (r *CanaryAppReconciler) applyOrDelete(ctx context.Context, app *v1.CanaryApp, ac any, obj client.Object) error {
	if !isNilPointer(ac) {
		return r.apply(ctx, app, ac)
	}
	return apply.Delete(ctx, r.Client, app, obj)
}

// applyDeployment applies a Deployment of track t. The API server's
// refusal of one built from spec.template as invalid is the template's
// fault. Before the first apply without spec.replicas (autoscaling), the
// field is handed over (handOverReplicas).
func (r *CanaryAppReconciler) applyDeployment(ctx context.Context, app *v1.CanaryApp, t workload.Track, ac *appsv1ac.DeploymentApplyConfiguration) error {
	if app.Spec.Autoscaling != nil {
		if err := r.handOverReplicas(ctx, app, workload.DeploymentName(app, t)); err != nil {
			return err
		}
	}
	err := r.apply(ctx, app, ac)
	if err != nil && app.Spec.Template != nil && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) {
		return fmt.Errorf("%w: the API server refused the Deployment built from it: %w", v1.ErrTemplate, err)
	}
	return err
}

// handOverReplicas makes ReplicasHandoffManager co-own the current
// spec.replicas of a Deployment canaryop still owns it on, so that
// canaryop's next apply (without the field) leaves the value for the HPA
// instead of resetting it. The apply carries the Deployment's UID, so it
// never creates or touches another object.
func (r *CanaryAppReconciler) handOverReplicas(ctx context.Context, app *v1.CanaryApp, name string) error {
	d := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: app.Namespace, Name: name}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading Deployment %s/%s: %w", app.Namespace, name, err)
	}
	if !metav1.IsControlledBy(d, app) || d.Spec.Replicas == nil || !workload.OwnsReplicas(d, apply.FieldManager) {
		return nil
	}
	ac := appsv1ac.Deployment(name, app.Namespace).WithUID(d.UID).
		WithSpec(appsv1ac.DeploymentSpec().WithReplicas(*d.Spec.Replicas))
	if err := r.Apply(ctx, ac, client.FieldOwner(ReplicasHandoffManager)); err != nil {
		return fmt.Errorf("handing spec.replicas of Deployment %s/%s to its HPA: %w", app.Namespace, name, err)
	}
	return nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return !rv.IsValid() || (rv.Kind() == reflect.Pointer && rv.IsNil())
}
