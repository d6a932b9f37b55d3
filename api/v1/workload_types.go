package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PodTemplate is the pod template of both Deployments (spec.template): a
// Kubernetes PodTemplateSpec. The operator takes everything from it and
// sets only what it owns: the app container's image (spec.image), its own
// labels (reserved here), and a port when spec.imageListenPort is not
// already declared.
//
// The CRD declares only metadata and spec.containers[].name of it, and
// preserves every other field unvalidated: a full PodSpec schema would make
// the CRD about ten times larger (past the 256 KiB a client-side
// `kubectl apply` of the install manifest can store), and the API server
// validates the pod anyway when the operator applies the Deployment. An
// unknown field (a typo) or an invalid pod stops the rollout with the
// condition Stalled/InvalidTemplate and the API server's message.
//
// +kubebuilder:validation:XValidation:rule="has(self.spec) && has(self.spec.containers) && self.spec.containers.size() > 0",message="template.spec.containers must list at least one container: the template describes the app's pods"
type PodTemplate struct {
	// metadata holds the pods' labels and annotations.
	// +optional
	Metadata PodTemplateMetadata `json:"metadata,omitempty"`

	// spec is a Kubernetes PodSpec.
	// +optional
	Spec PodTemplateSpec `json:"spec,omitzero"`
}

// PodTemplateMetadata is the metadata of the template's pods.
type PodTemplateMetadata struct {
	// labels are added to the pods. Keys under canary.atze.io/ and the
	// app.kubernetes.io/name and app.kubernetes.io/managed-by labels are the
	// operator's: it selects the primary and canary pods by them.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('canary.atze.io/'))",message="template.metadata.labels must not set canary.atze.io/ labels: canaryop sets them to tell the primary's pods from the canary's"
	// +kubebuilder:validation:XValidation:rule="!('app.kubernetes.io/name' in self) && !('app.kubernetes.io/managed-by' in self)",message="template.metadata.labels must not set app.kubernetes.io/name or app.kubernetes.io/managed-by: canaryop sets them to the CanaryApp's name and to canaryop"
	// +kubebuilder:validation:XValidation:rule="!('pod-template-hash' in self)",message="template.metadata.labels must not set pod-template-hash: the Deployment controller sets it"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the pods, for example
	// sidecar.istio.io/inject or prometheus.io/scrape.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PodTemplateSpec is a Kubernetes PodSpec kept as written. Only
// containers[].name is declared in the schema (for the CEL rules); the
// other fields are preserved and validated by the API server when the
// operator applies the Deployments. PodSpec decodes it.
//
// +kubebuilder:pruning:PreserveUnknownFields
// +kubebuilder:object:generate=false
type PodTemplateSpec struct {
	// containers are the pod's containers; containerName picks the app's.
	// At least one (a CEL rule of the template says so readably).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Containers []TemplateContainer `json:"containers,omitempty"`

	// raw is the PodSpec as written.
	raw []byte `json:"-"`
}

// TemplateContainer is one container of the template; every field but name
// is preserved as written.
//
// +kubebuilder:pruning:PreserveUnknownFields
type TemplateContainer struct {
	// name is the container's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
}

// NewPodTemplateSpec is the PodTemplateSpec of spec, for Go callers
// (tests, tools) that build a CanaryApp.
func NewPodTemplateSpec(spec corev1.PodSpec) (PodTemplateSpec, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return PodTemplateSpec{}, err
	}
	var s PodTemplateSpec
	return s, s.UnmarshalJSON(raw)
}

// UnmarshalJSON keeps the whole PodSpec and reads the container names.
func (s *PodTemplateSpec) UnmarshalJSON(data []byte) error {
	var names struct {
		Containers []TemplateContainer `json:"containers"`
	}
	if err := json.Unmarshal(data, &names); err != nil {
		return err
	}
	s.Containers = names.Containers
	s.raw = bytes.Clone(data)
	return nil
}

// MarshalJSON writes the PodSpec as it was read.
func (s PodTemplateSpec) MarshalJSON() ([]byte, error) {
	if s.raw != nil {
		return s.raw, nil
	}
	return json.Marshal(struct {
		Containers []TemplateContainer `json:"containers,omitempty"`
	}{s.Containers})
}

// DeepCopyInto copies s into out (hand-written: raw is unexported).
func (s *PodTemplateSpec) DeepCopyInto(out *PodTemplateSpec) {
	out.Containers = append([]TemplateContainer(nil), s.Containers...)
	out.raw = bytes.Clone(s.raw)
}

// DeepCopy returns a copy of s.
func (s *PodTemplateSpec) DeepCopy() *PodTemplateSpec {
	if s == nil {
		return nil
	}
	out := &PodTemplateSpec{}
	s.DeepCopyInto(out)
	return out
}

// ErrTemplate marks an error in spec.template found by the operator.
var ErrTemplate = errors.New("invalid spec.template")

// PodSpec decodes the template's PodSpec strictly: a field the PodSpec does
// not have (a typo the CRD schema cannot catch, see PodTemplate) is an
// error wrapping ErrTemplate.
func (s *PodTemplateSpec) PodSpec() (*corev1.PodSpec, error) {
	raw, err := s.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	out := &corev1.PodSpec{}
	if err := dec.Decode(out); err != nil {
		return nil, fmt.Errorf("%w: spec.template.spec: %w", ErrTemplate, err)
	}
	return out, nil
}

// Raw is the PodSpec as written, in JSON.
func (s *PodTemplateSpec) Raw() ([]byte, error) { return s.MarshalJSON() }

// AutoscalingSpec makes the operator own a HorizontalPodAutoscaler for the
// primary Deployment, and one for the canary, and stop setting
// spec.replicas on both (the HPAs own it). spec.replicas is then unused
// and spec.testReplicas is the canary HPA's minimum.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas must not be above autoscaling.maxReplicas"
type AutoscalingSpec struct {
	// minReplicas is the primary's lowest replica count. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the highest replica count of the primary and of the
	// canary.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxReplicas int32 `json:"maxReplicas"`

	// metrics are the HPA's metrics, as in autoscaling/v2
	// (HorizontalPodAutoscalerSpec.metrics); empty means 80% average CPU
	// utilization, the HPA's default.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Metrics []autoscalingv2.MetricSpec `json:"metrics,omitempty"`
}

// DisruptionBudgetSpec makes the operator own a PodDisruptionBudget for the
// primary's pods. Set exactly one of minAvailable and maxUnavailable.
//
// +kubebuilder:validation:XValidation:rule="has(self.minAvailable) != has(self.maxUnavailable)",message="disruptionBudget needs exactly one of minAvailable and maxUnavailable"
type DisruptionBudgetSpec struct {
	// minAvailable is a number or a percentage of primary pods that an
	// eviction must leave available.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MinAvailable *intstr.IntOrString `json:"minAvailable,omitempty"`

	// maxUnavailable is a number or a percentage of primary pods that may be
	// unavailable through evictions.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}
