package workload

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// HPAName is the name of the HorizontalPodAutoscaler of track t: the same
// as its Deployment's.
func HPAName(app *v1.CanaryApp, t Track) string { return DeploymentName(app, t) }

// PDBName is the name of the primary's PodDisruptionBudget.
func PDBName(app *v1.CanaryApp) string { return PrimaryName(app) }

// HPA is the HorizontalPodAutoscaler of track t, nil without
// spec.autoscaling. The primary's scales between minReplicas (default 1)
// and maxReplicas; the canary's between testReplicas and maxReplicas (at
// least testReplicas), so that the canary never runs fewer pods than the
// author asked to test with. Both use spec.autoscaling.metrics.
func HPA(app *v1.CanaryApp, t Track) *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	as := app.Spec.Autoscaling
	if as == nil {
		return nil
	}
	minReplicas := int32(1)
	if as.MinReplicas != nil {
		minReplicas = *as.MinReplicas
	}
	if t == TrackCanary {
		minReplicas = app.Spec.TestReplicas
	}
	spec := autoscalingv2ac.HorizontalPodAutoscalerSpec().
		WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
			WithAPIVersion(appsv1.SchemeGroupVersion.String()).
			WithKind("Deployment").
			WithName(DeploymentName(app, t))).
		WithMinReplicas(minReplicas).
		WithMaxReplicas(max(as.MaxReplicas, minReplicas))
	if len(as.Metrics) > 0 {
		// Through JSON: the API's MetricSpec and its apply configuration
		// share their JSON form.
		var metrics []autoscalingv2ac.MetricSpecApplyConfiguration
		if data, err := json.Marshal(as.Metrics); err == nil && json.Unmarshal(data, &metrics) == nil {
			for i := range metrics {
				spec.WithMetrics(&metrics[i])
			}
		}
	}
	return autoscalingv2ac.HorizontalPodAutoscaler(HPAName(app, t), app.Namespace).
		WithLabels(TrackLabels(app, t)).
		WithSpec(spec)
}

// PDB is the primary's PodDisruptionBudget, nil without
// spec.disruptionBudget. It selects the primary's pods only: the canary's
// are few and short-lived, and a budget on them could block a node drain
// for the length of a canary.
func PDB(app *v1.CanaryApp) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	b := app.Spec.DisruptionBudget
	if b == nil {
		return nil
	}
	spec := policyv1ac.PodDisruptionBudgetSpec().
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(app, TrackPrimary)))
	if b.MinAvailable != nil {
		spec.WithMinAvailable(*b.MinAvailable)
	}
	if b.MaxUnavailable != nil {
		spec.WithMaxUnavailable(*b.MaxUnavailable)
	}
	return policyv1ac.PodDisruptionBudget(PDBName(app), app.Namespace).
		WithLabels(Labels(app)).
		WithSpec(spec)
}

// OwnsReplicas reports whether FieldManager-named manager owns d's
// spec.replicas, from d's managedFields.
func OwnsReplicas(d *appsv1.Deployment, manager string) bool {
	for _, e := range d.ManagedFields {
		if e.Manager != manager || e.FieldsV1 == nil || e.Subresource != "" {
			continue
		}
		var f struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(e.FieldsV1.Raw, &f) == nil {
			if _, ok := f.Spec["f:replicas"]; ok {
				return true
			}
		}
	}
	return false
}
