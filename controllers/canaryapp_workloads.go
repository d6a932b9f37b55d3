package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/rollout"
	"github.com/atzedevries/canaryop/internal/workload"
)

// applyWorkloads applies what runs the app's pods: the primary Deployment,
// the canary Deployment while the plan wants one, and their autoscalers and
// disruption budget. An unusable spec.template is an error wrapping
// v1.ErrTemplate: found by workload.CheckTemplate, or refused by the API
// server as invalid (its message names the field).
func (r *CanaryAppReconciler) applyWorkloads(ctx context.Context, app *v1.CanaryApp, plan rollout.Result) error {
	if err := workload.CheckTemplate(app); err != nil {
		return err
	}
	if err := r.applyTemplated(ctx, app, workload.PrimaryDeployment(app, plan.PrimaryImage, r.PodOptions...)); err != nil {
		return err
	}
	if plan.CanaryImage != "" {
		if err := r.applyTemplated(ctx, app, workload.CanaryDeployment(app, plan.CanaryImage, r.PodOptions...)); err != nil {
			return err
		}
	}
	return nil
}

// applyTemplated applies a Deployment built from spec.template; the API
// server's refusal of it as invalid is the template's fault.
func (r *CanaryAppReconciler) applyTemplated(ctx context.Context, app *v1.CanaryApp, obj any) error {
	err := r.apply(ctx, app, obj)
	if err != nil && app.Spec.Template != nil && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) {
		return fmt.Errorf("%w: the API server refused the Deployment built from it: %w", v1.ErrTemplate, err)
	}
	return err
}
