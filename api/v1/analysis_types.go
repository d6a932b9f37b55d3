package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Built-in metrics: PromQL the operator writes, scoped to one workload's own
// pods through Istio's standard telemetry (reporter="destination",
// destination_workload, destination_workload_namespace).
const (
	// MetricRequestSuccessRate is the percentage of the workload's requests
	// answered without a 5xx over the metric's interval; judge it with
	// thresholdRange.min (for example 99).
	MetricRequestSuccessRate = "request-success-rate"
	// MetricRequestDuration is the 99th percentile of the workload's request
	// duration in milliseconds over the metric's interval; judge it with
	// thresholdRange.max (for example 500) or compareToPrimary.
	MetricRequestDuration = "request-duration"
)

// MaxAnalysisMetrics bounds spec.analysis.metrics.
const MaxAnalysisMetrics = 10

// AnalysisMetric is one metric the analysis judges at every check. Its
// query is one of: the PromQL template in query, an admin's template
// (templateRef), or, with neither, the built-in metric its name names.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.query) && has(self.templateRef))",message="a metric has either query or templateRef, not both"
// +kubebuilder:validation:XValidation:rule="has(self.query) || has(self.templateRef) || self.name in ['request-success-rate', 'request-duration']",message="a metric needs a query or a templateRef, unless its name is a built-in metric (request-success-rate, request-duration)"
// +kubebuilder:validation:XValidation:rule="(has(self.failWhenNonEmpty) && self.failWhenNonEmpty) ? !has(self.thresholdRange) && !has(self.compareToPrimary) : (has(self.thresholdRange) || has(self.compareToPrimary))",message="a metric needs a verdict rule: thresholdRange and/or compareToPrimary, or failWhenNonEmpty alone"
type AnalysisMetric struct {
	// name names the metric in status, events and Git; the built-in names
	// select a built-in query.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// query is PromQL as a Go text/template. Variables: {{ .Name }} and
	// {{ .Namespace }} (the CanaryApp), {{ .Canary }} and {{ .Primary }}
	// (the Deployments, which are Istio's destination_workload),
	// {{ .Service }}, {{ .Interval }} (the metric's window as a PromQL
	// duration, such as 30s) and {{ .Workload }}: the workload being
	// measured, the canary, or the primary when compareToPrimary runs the
	// same query for it. Only variables and `index .Args "key"` are
	// allowed, no functions or control structures.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query,omitempty"`

	// templateRef names a query the platform admin provides (a key of a
	// ConfigMap labelled canary.atze.io/metric-templates in the operator's
	// namespace), with arguments for it.
	// +optional
	TemplateRef *MetricTemplateRef `json:"templateRef,omitempty"`

	// interval is the window {{ .Interval }} stands for. Default: the
	// analysis interval, at least 30s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="metric interval must be between 1s and 24h"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// thresholdRange passes the metric while its single value lies within
	// [min, max].
	// +optional
	ThresholdRange *ThresholdRange `json:"thresholdRange,omitempty"`

	// failWhenNonEmpty fails the metric when the query returns any sample,
	// the semantics of spec.prometheusQuery.
	// +optional
	FailWhenNonEmpty *bool `json:"failWhenNonEmpty,omitempty"`

	// compareToPrimary runs the same query for the primary over the same
	// window and fails the canary when its value exceeds the primary's by
	// more than maxIncrease. For metrics where higher is worse (error
	// rates, latencies); the query must use {{ .Workload }}.
	// +optional
	CompareToPrimary *CompareToPrimary `json:"compareToPrimary,omitempty"`

	// onQueryError overrides analysis.onQueryError for this metric.
	// +optional
	OnQueryError QueryErrorPolicy `json:"onQueryError,omitempty"`
}

// ThresholdRange bounds a metric's value. Give min, max or both, as
// decimal numbers such as "99" or "0.5".
//
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange needs min, max or both"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || double(self.min) <= double(self.max)",message="thresholdRange.min must not be above thresholdRange.max"
type ThresholdRange struct {
	// min is the lowest passing value.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	Min *string `json:"min,omitempty"`
	// max is the highest passing value.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	Max *string `json:"max,omitempty"`
}

// CompareToPrimary judges the canary against the primary it would replace.
type CompareToPrimary struct {
	// maxIncrease is how much the canary's value may exceed the primary's:
	// absolute ("0.5", in the metric's unit) or relative ("10%" of the
	// primary's value).
	// +required
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?%?$`
	MaxIncrease string `json:"maxIncrease"`
}

// MetricTemplateRef references an admin-defined query.
type MetricTemplateRef struct {
	// name is the query's key in the admin's metric-template ConfigMaps.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Name string `json:"name"`
	// args are substituted for {{ index .Args "key" }} in the query, as the
	// content of a PromQL string (quotes and backslashes escaped).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$') && self[k].size() <= 256)",message="templateRef.args keys must be identifiers and values at most 256 characters"
	Args map[string]string `json:"args,omitempty"`
}

// MetricCheck is one metric's result in one check.
type MetricCheck struct {
	// name is the metric's name.
	// +required
	Name string `json:"name"`
	// value is the canary's value in short form.
	// +optional
	Value string `json:"value,omitempty"`
	// primaryValue is the primary's value (compareToPrimary only).
	// +optional
	PrimaryValue string `json:"primaryValue,omitempty"`
	// verdict is Pass, Fail or Inconclusive.
	// +required
	Verdict CheckVerdict `json:"verdict"`
	// message says why, in a few words.
	// +optional
	Message string `json:"message,omitempty"`
	// reason is a machine-readable cause of an Inconclusive verdict.
	// +optional
	Reason string `json:"reason,omitempty"`
}
