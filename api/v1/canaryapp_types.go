package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ImagePattern is the container image reference syntax accepted in spec.image:
// optional registry host (with port), lower-case path components, optional tag,
// optional sha256 digest.
const ImagePattern = `^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:[.][a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`

// MaxNameLength is the longest CanaryApp name for which every derived object
// name (Service, "<name>-canary" Deployment, DestinationRule subsets) is still
// a valid DNS-1035 label of at most 63 characters.
const MaxNameLength = 56

// CanaryApp describes an application whose new images are released through a
// canary: a second Deployment that receives a growing share of the traffic
// while a Prometheus query decides whether the release is bad.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// The short name is "ca" only: "canary" is Flagger's Canary kind on clusters
// that run both.
//
// +kubebuilder:resource:shortName=ca,categories=all
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Stable",type=string,JSONPath=`.status.stableImage`,priority=1
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.status.canaryImage`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 56",message="metadata.name must be at most 56 characters: the operator derives '<name>-canary' objects that must fit in 63"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.containerName) || (has(self.spec.template) && self.spec.template.spec.containers.exists(c, c.name == self.spec.containerName))",message="spec.containerName must name a container of spec.template.spec.containers"
// +kubebuilder:validation:XValidation:rule="has(self.spec.prometheusQuery) || (has(self.spec.analysis) && has(self.spec.analysis.metrics) && self.spec.analysis.metrics.size() > 0)",message="spec.prometheusQuery or spec.analysis.metrics must say how to judge the canary"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter) because it names a Service"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.traffic) || !has(self.spec.traffic.provider) || self.spec.traffic.provider != 'gatewayapi' || self.metadata.name.size() <= 55",message="metadata.name must be at most 55 characters with traffic.provider gatewayapi: the operator derives a '<name>-primary' Service that must fit in 63"
type CanaryApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the app.
	// +required
	Spec CanaryAppSpec `json:"spec"`

	// status is what the operator observed and decided.
	// +optional
	Status CanaryAppStatus `json:"status,omitempty"`
}

// CanaryAppSpec is the desired state of a CanaryApp.
//
// +kubebuilder:validation:XValidation:rule="!has(self.gateways) || !has(self.traffic) || !has(self.traffic.provider) || self.traffic.provider != 'gatewayapi'",message="gateways are Istio Gateways: with traffic.provider gatewayapi name Gateways in traffic.gatewayapi.parentRefs"
type CanaryAppSpec struct {
	// image is the container image the app should run. Changing it starts a
	// canary release of the new image.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:[.][a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})?(?:@sha256:[a-f0-9]{64})?$')",message="image must be a container image reference such as 'registry.example.com/team/app:v2' (lower-case path, optional tag and sha256 digest)"
	Image string `json:"image"`

	// imageListenPort is the port the container listens on; the Service
	// exposes the same port.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ImageListenPort int32 `json:"imageListenPort"`

	// template is the pod template of the primary and the canary
	// Deployment (a Kubernetes PodTemplateSpec); without it the pods run one
	// container "app" with the image and a TCP readiness probe on
	// imageListenPort. See PodTemplate for what the operator sets in it.
	// +optional
	Template *PodTemplate `json:"template,omitempty"`

	// containerName names the app's container in template, the one whose
	// image is spec.image. Default: the first container.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ContainerName string `json:"containerName,omitempty"`

	// autoscaling makes HorizontalPodAutoscalers scale the primary and the
	// canary instead of replicas and testReplicas.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// disruptionBudget makes the operator own a PodDisruptionBudget for the
	// primary's pods.
	// +optional
	DisruptionBudget *DisruptionBudgetSpec `json:"disruptionBudget,omitempty"`

	// replicas is the number of pods of the primary (stable) Deployment.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Replicas int32 `json:"replicas"`

	// testReplicas is the number of pods of the canary Deployment.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	TestReplicas int32 `json:"testReplicas"`

	// prometheusQuery is a PromQL expression that returns at least one sample
	// when the release is bad, for example
	// `increase(istio_requests_total{response_code=~"5.*"}[20s]) > 2`.
	// An empty result means the check passed. It is the shorthand for one
	// analysis.metrics entry with failWhenNonEmpty; one of the two is
	// required.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	PrometheusQuery string `json:"prometheusQuery,omitempty"`

	// prometheusURL is the base URL of the Prometheus HTTP API. The
	// operator's admin decides which URLs are allowed
	// (--prometheus-allowed-urls) and supplies credentials as Secrets, so
	// the URL holds neither credentials nor a query string.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^ /]+(/.*)?$')",message="prometheusURL must be an http:// or https:// URL with a host, for example 'http://prometheus.istio-system.svc:9090'"
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="prometheusURL must not hold credentials: the platform admin provides them as a Secret in the operator's namespace"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="prometheusURL must not have a query string or fragment"
	PrometheusURL string `json:"prometheusURL"`

	// gateways are Istio Gateways ("name" or "namespace/name") whose traffic
	// the app's VirtualService routes too, for example the ingress gateway
	// of the original demo (`curl localhost:8090/hello`). Traffic inside the
	// mesh is always routed ("mesh" is added).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Gateways []string `json:"gateways,omitempty"`

	// hosts are further hosts the VirtualService answers for (besides the
	// Service name), such as the external host name a gateway serves, or "*".
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*|(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$`
	Hosts []string `json:"hosts,omitempty"`

	// traffic chooses the traffic router (Istio by default, or Gateway
	// API) and adds header routing for testers and mirroring.
	// +optional
	Traffic *TrafficSpec `json:"traffic,omitempty"`

	// analysis tunes the canary analysis. Every field has a default that
	// reproduces the original operator: a weight step of 10 every 30s up to
	// 50, then promotion; roll back on the first bad check.
	// +optional
	Analysis *AnalysisSpec `json:"analysis,omitempty"`

	// failedImages lists images that failed a canary and must never be
	// canaried again. The operator writes this list to Git on rollback; a
	// person removes an entry to allow a retry of that image.
	// +optional
	// +listType=map
	// +listMapKey=image
	// +kubebuilder:validation:MaxItems=100
	FailedImages []FailedImage `json:"failedImages,omitempty"`

	// gitops says where and how the canary's outcome is written back to Git.
	// When absent, nothing is written. The repository and path may be left
	// out: they are then discovered from the Argo CD Application that manages
	// this object.
	// +optional
	GitOps *GitOpsSpec `json:"gitops,omitempty"`

	// suspend freezes a running canary: its weight stays and the step clock
	// stops. Checks still run, and a failing check still rolls it back.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// approvedImage approves a canary held at the gate of
	// analysis.approval: Manual. The canary is promoted when this names its
	// image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	ApprovedImage string `json:"approvedImage,omitempty"`

	// notifications send the app's transitions to the admin's notification
	// providers (Slack, Microsoft Teams, a JSON webhook), by provider name.
	// +optional
	// +listType=map
	// +listMapKey=provider
	// +kubebuilder:validation:MaxItems=8
	Notifications []Notification `json:"notifications,omitempty"`
}

// QueryErrorPolicy says what a check means when Prometheus could not answer
// (an error, a timeout) or answered only NaN samples.
// +kubebuilder:validation:Enum=Hold;Fail
type QueryErrorPolicy string

const (
	// QueryErrorHold keeps the canary at its weight: the check does not pass,
	// so the weight never increases on missing data, and it is not counted as a
	// failure either.
	QueryErrorHold QueryErrorPolicy = "Hold"
	// QueryErrorFail counts the check as a failed check.
	QueryErrorFail QueryErrorPolicy = "Fail"
)

// AnalysisSpec tunes how a canary advances and when it fails.
// +kubebuilder:validation:XValidation:rule="!(has(self.stepWeight) && has(self.stepWeights))",message="set either analysis.stepWeight or analysis.stepWeights, not both"
// The rule below compares values, not indexes: CEL's all(x, ...) binds a
// list's elements. isSorted (non-decreasing) plus "every value occurs once"
// is strictly increasing, and needs only the lists library of Kubernetes
// 1.28 and later.
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || (self.stepWeights.isSorted() && self.stepWeights.all(w, self.stepWeights.indexOf(w) == self.stepWeights.lastIndexOf(w)))",message="analysis.stepWeights must be strictly increasing"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || !has(self.promotionWeight) || self.stepWeights.exists(w, w >= self.promotionWeight)",message="analysis.stepWeights must reach analysis.promotionWeight"
type AnalysisSpec struct {
	// interval is how long the canary stays at one weight, with passing
	// checks, before the weight increases. Default 30s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="analysis.interval must be between 1s and 24h"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// checkInterval is how often the Prometheus query runs. It is shorter than
	// interval so that a bad canary is caught between weight steps.
	// Default 2s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="analysis.checkInterval must be between 1s and 1h"
	CheckInterval *metav1.Duration `json:"checkInterval,omitempty"`

	// stepWeight is the traffic percentage added at each step. Default 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	StepWeight *int32 `json:"stepWeight,omitempty"`

	// stepWeights is an explicit list of canary weights, strictly increasing,
	// used instead of stepWeight.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	StepWeights []int32 `json:"stepWeights,omitempty"`

	// promotionWeight is the canary weight at which, after one more interval
	// of passing checks, the canary is promoted. Default 50.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	PromotionWeight *int32 `json:"promotionWeight,omitempty"`

	// failureThreshold is the number of failed checks that rolls the canary
	// back. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold *int32 `json:"failureThreshold,omitempty"`

	// canaryReadyTimeout is how long the canary Deployment may take to become
	// available before the release is rolled back. Default 5m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="analysis.canaryReadyTimeout must be between 1s and 24h"
	CanaryReadyTimeout *metav1.Duration `json:"canaryReadyTimeout,omitempty"`

	// metrics are the metrics every check judges; the check passes when
	// all pass. spec.prometheusQuery, when set, is one more metric named
	// "prometheus-query" with failWhenNonEmpty.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	Metrics []AnalysisMetric `json:"metrics,omitempty"`

	// onQueryError says what a check means when Prometheus returns an error,
	// times out or answers only NaN samples: Hold (default; the weight does
	// not increase and no failure is counted) or Fail (a failed check).
	// Such a check never passes.
	// +optional
	OnQueryError QueryErrorPolicy `json:"onQueryError,omitempty"`

	// approval is Automatic (default: promote after the last step) or
	// Manual (wait at the last weight until spec.approvedImage names the
	// canary; checks keep running and a failing check still rolls back).
	// +optional
	Approval ApprovalPolicy `json:"approval,omitempty"`

	// webhooks call the admin's webhook targets before the canary gets
	// traffic (PreRollout), with every check (Rollout) and with the
	// outcome (PostRollout).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Webhooks []AnalysisWebhook `json:"webhooks,omitempty"`
}

// FailedImage records an image whose canary failed.
type FailedImage struct {
	// image is the image reference that failed.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// reason says why, in a few words.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// time is when the canary failed.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// WriteMode is how an outcome is written back to Git.
// +kubebuilder:validation:Enum=Commit;PullRequest;None
type WriteMode string

const (
	// WriteCommit pushes a commit to the branch.
	WriteCommit WriteMode = "Commit"
	// WritePullRequest pushes a branch and opens a GitHub pull request.
	WritePullRequest WriteMode = "PullRequest"
	// WriteNone writes nothing for this outcome.
	WriteNone WriteMode = "None"
)

// GitOpsSpec says where the CanaryApp's manifest lives in Git and how the
// operator writes a canary's outcome back to it. Credentials are not named
// here: the platform admin provides them as Secrets in the operator's
// namespace, matched by repository URL.
type GitOpsSpec struct {
	// repoURL is the Git repository that holds this CanaryApp's manifest
	// (https:// or ssh://, or scp-like git@host:path). Discovered from the
	// managing Argo CD Application when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(https?|ssh)://[^ ]+$') || self.matches('^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^ ]+$')",message="gitops.repoURL must be an http(s):// or ssh:// URL, or scp-like user@host:path"
	// +kubebuilder:validation:XValidation:rule="!self.contains('/../') && !self.contains('/./') && !self.endsWith('/..') && !self.contains('%') && !self.contains('\\\\') && !self.matches('^[a-z]+://.*//')",message="gitops.repoURL must be canonical: no '.' or '..' segments, empty segments, backslashes or percent-encoding (credentials are matched on the path)"
	RepoURL string `json:"repoURL,omitempty"`

	// branch is the branch that Argo CD syncs from. Discovered from the Argo
	// CD Application's targetRevision when empty, else "main".
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="!self.contains('..') && !self.startsWith('/') && !self.endsWith('/') && !self.contains(' ')",message="gitops.branch must be a valid branch name"
	Branch string `json:"branch,omitempty"`

	// path is the folder (or file) in the repository that holds the manifest
	// of this CanaryApp. Discovered from the Argo CD Application when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(p, p == '..')",message="gitops.path must be relative to the repository root and must not contain '..'"
	Path string `json:"path,omitempty"`

	// promotion is how a promotion is written back. Default Commit.
	// +optional
	Promotion WriteMode `json:"promotion,omitempty"`

	// rollback is how a rollback is written back. Default Commit.
	// +optional
	Rollback WriteMode `json:"rollback,omitempty"`
}

// Phase is a one-word summary of the CanaryApp for people and `kubectl get`.
// Decisions use conditions and the fields of the status, never the phase.
type Phase string

const (
	PhaseInitializing Phase = "Initializing"
	PhaseStable       Phase = "Stable"
	PhaseProgressing  Phase = "Progressing"
	PhasePromoting    Phase = "Promoting"
	PhaseFailed       Phase = "Failed"
	PhaseStalled      Phase = "Stalled"
	// PhaseSuspended: a canary waits for a person (spec.suspend, or the
	// approval gate).
	PhaseSuspended Phase = "Suspended"
	// PhaseQueued: a new image waits for a free slot under the admin's cap
	// on canaries progressing at once (--max-progressing-canaries).
	PhaseQueued Phase = "Queued"
)

// CheckVerdict is the outcome of one analysis check.
type CheckVerdict string

const (
	// CheckPass means the query returned no sample: nothing bad was seen.
	CheckPass CheckVerdict = "Pass"
	// CheckFail means the query returned at least one sample.
	CheckFail CheckVerdict = "Fail"
	// CheckInconclusive means the query could not run or returned only NaN.
	CheckInconclusive CheckVerdict = "Inconclusive"
)

// AnalysisCheck is one run of the Prometheus query during a canary.
type AnalysisCheck struct {
	// time is when the query ran.
	// +required
	Time metav1.Time `json:"time"`
	// image is the canary image under analysis.
	// +optional
	Image string `json:"image,omitempty"`
	// weight is the canary's traffic weight when the query ran.
	// +required
	Weight int32 `json:"weight"`
	// value is the query's answer in short form (for example "3" or "empty").
	// +optional
	Value string `json:"value,omitempty"`
	// verdict is Pass, Fail or Inconclusive.
	// +required
	Verdict CheckVerdict `json:"verdict"`
	// message explains an Inconclusive verdict.
	// +optional
	Message string `json:"message,omitempty"`
	// reason is a machine-readable cause of an Inconclusive verdict, such
	// as PrometheusURLNotAllowed; it becomes the Analysis condition's
	// reason.
	// +optional
	Reason string `json:"reason,omitempty"`
	// metrics are the results of each metric, when the analysis has
	// analysis.metrics; verdict, value and reason above then sum them up.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=11
	Metrics []MetricCheck `json:"metrics,omitempty"`
	// countsAsFailure: a metric whose onQueryError is Fail was
	// inconclusive, so the check counts as failed.
	// +optional
	CountsAsFailure bool `json:"countsAsFailure,omitempty"`
}

// MaxStatusChecks bounds status.checks.
const MaxStatusChecks = 30

// MaxStatusFailedImages bounds status.failedImages.
const MaxStatusFailedImages = 20

// CanaryAppStatus is what the operator observed and decided.
type CanaryAppStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Progressing, Stalled and the domain conditions
	// Analysis and WriteBack.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// phase is a one-word summary for people.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// stableImage is the image the primary Deployment runs.
	// +optional
	StableImage string `json:"stableImage,omitempty"`

	// canaryImage is the image under analysis; empty when no canary runs.
	// +optional
	CanaryImage string `json:"canaryImage,omitempty"`

	// canaryWeight is the percentage of traffic routed to the canary.
	// +optional
	CanaryWeight int32 `json:"canaryWeight"`

	// failedChecks counts failed checks of the current canary.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`

	// canaryStartedAt is when the current canary was started.
	// +optional
	CanaryStartedAt *metav1.Time `json:"canaryStartedAt,omitempty"`

	// queuedAt is when the operator first held spec.image back under the
	// admin's cap on canaries progressing at once; queued canaries start in
	// the order of queuedAt. Empty when nothing waits.
	// +optional
	QueuedAt *metav1.Time `json:"queuedAt,omitempty"`

	// stepStartedAt is when the interval at the current weight started:
	// the last weight change, or the last check that did not pass.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`

	// checks is the analysis history of the current (or last) canary, newest
	// last, at most 30 entries.
	// +optional
	// +listType=atomic
	Checks []AnalysisCheck `json:"checks,omitempty"`

	// failedImages are the images this operator rolled back, newest last, at
	// most 20. Together with spec.failedImages they are never canaried again.
	// +optional
	// +listType=atomic
	FailedImages []FailedImage `json:"failedImages,omitempty"`

	// writeBack is the state of writing the last outcome back to Git.
	// +optional
	WriteBack *WriteBackStatus `json:"writeBack,omitempty"`

	// suspendedAt is when spec.suspend froze the running canary's step
	// clock.
	// +optional
	SuspendedAt *metav1.Time `json:"suspendedAt,omitempty"`

	// approval is set while a canary waits at the approval gate.
	// +optional
	Approval *ApprovalStatus `json:"approval,omitempty"`

	// requests acknowledges the abort and retry requests acted on.
	// +optional
	Requests *RequestStatus `json:"requests,omitempty"`

	// lastAction is the last request a person made and what came of it.
	// +optional
	LastAction *ActionRecord `json:"lastAction,omitempty"`

	// commitStatus is the commit status reported on GitHub for the change
	// that introduced the canary image (Argo CD-managed apps whose
	// repository is on GitHub).
	// +optional
	CommitStatus *CommitStatusReport `json:"commitStatus,omitempty"`
}

// Outcome is the decision a canary ended with.
type Outcome string

const (
	OutcomePromoted   Outcome = "Promoted"
	OutcomeRolledBack Outcome = "RolledBack"
	// OutcomeRetryAllowed: a person allowed failedImage again; its record
	// is removed from the manifest.
	OutcomeRetryAllowed Outcome = "RetryAllowed"
	// OutcomeApprovalRequested: a canary waits at the approval gate; a pull
	// request sets spec.approvedImage to image. Merging it approves,
	// closing it unmerged rejects.
	OutcomeApprovalRequested Outcome = "ApprovalRequested"
)

// WriteBackStatus tracks writing one canary outcome back to Git. It is kept
// in status so that a pending write-back survives a controller restart and is
// never done twice.
type WriteBackStatus struct {
	// outcome is what is written: Promoted or RolledBack.
	// +required
	Outcome Outcome `json:"outcome"`
	// image is the image the manifest must name after the write-back.
	// +required
	Image string `json:"image"`
	// failedImage is the image recorded as failed (rollbacks only).
	// +optional
	FailedImage string `json:"failedImage,omitempty"`
	// previousImage is the stable image before a promotion. The manifest's
	// image is replaced only while it still names previousImage, so a newer
	// image a person committed meanwhile is kept.
	// +optional
	PreviousImage string `json:"previousImage,omitempty"`
	// reason says why the canary ended this way.
	// +optional
	Reason string `json:"reason,omitempty"`
	// decidedAt is when the canary decided.
	// +required
	DecidedAt metav1.Time `json:"decidedAt"`
	// pending is true until the outcome is in Git (or a pull request for it
	// exists).
	// +optional
	Pending bool `json:"pending"`
	// attempts counts tries so far.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// lastAttemptAt is when the last try ended.
	// +optional
	LastAttemptAt *metav1.Time `json:"lastAttemptAt,omitempty"`
	// commit is the SHA of the commit that holds the outcome.
	// +optional
	Commit string `json:"commit,omitempty"`
	// pullRequestURL is the pull request that proposes the outcome.
	// +optional
	PullRequestURL string `json:"pullRequestURL,omitempty"`
	// pullRequestState is open, merged or closed.
	// +optional
	PullRequestState string `json:"pullRequestState,omitempty"`
	// pullRequest names the write-back pull request.
	// +optional
	PullRequest *PullRequestRef `json:"pullRequest,omitempty"`
	// supersedes is the approval pull request that was still open when
	// this outcome replaced its request (a rollback at the gate, an
	// approval given with kubectl); it is closed with a comment once this
	// outcome is written.
	// +optional
	Supersedes *PullRequestRef `json:"supersedes,omitempty"`
	// pullRequestCheckedAt is when the pull request's state was last asked
	// for: an open pull request is polled on its own interval, not on every
	// reconcile, so one app costs about 60 GitHub requests an hour.
	// +optional
	PullRequestCheckedAt *metav1.Time `json:"pullRequestCheckedAt,omitempty"`
	// pullRequestPollErrors counts failed polls in a row; the poll interval
	// doubles with each, up to 30 minutes.
	// +optional
	PullRequestPollErrors int32 `json:"pullRequestPollErrors,omitempty"`
	// message says what happened, for example that Git already named a newer
	// image so only the failure record was written. Never holds credentials.
	// +optional
	Message string `json:"message,omitempty"`
	// error is the last error, without credentials.
	// +optional
	Error string `json:"error,omitempty"`
	// errorReason is the WriteBack condition reason of the last error, such
	// as NoCredentials or WriteBackNotPermitted.
	// +optional
	ErrorReason string `json:"errorReason,omitempty"`
	// stalled is true when the last error needs a person (a credential, the
	// admin's policy, the spec): the write-back is not retried with backoff
	// but after a spec change, or every few minutes in case the policy
	// changed.
	// +optional
	Stalled bool `json:"stalled,omitempty"`
	// attemptGeneration is the spec generation of the last attempt.
	// +optional
	AttemptGeneration int64 `json:"attemptGeneration,omitempty"`
	// attemptStartedAt is set while an attempt runs. Found set when no
	// attempt runs, it marks an attempt the operator did not survive.
	// +optional
	AttemptStartedAt *metav1.Time `json:"attemptStartedAt,omitempty"`
	// interruptedAttempts counts attempts that ended without a result (the
	// operator died or the writer panicked); at 3 the write-back stops with
	// reason WriteBackCrashed so that one poisoned outcome cannot crash-loop
	// the operator for every tenant.
	// +optional
	InterruptedAttempts int32 `json:"interruptedAttempts,omitempty"`
}

// PullRequestRef names a write-back pull request.
type PullRequestRef struct {
	// repository is "owner/name" on the forge.
	// +required
	Repository string `json:"repository"`
	// branch is the pull request's head branch, the app's own.
	// +required
	Branch string `json:"branch"`
	// base is the branch it merges into, the one Argo CD syncs.
	// +required
	Base string `json:"base"`
	// number is the pull request's number.
	// +required
	Number int32 `json:"number"`
}

// CanaryAppList is a list of CanaryApps.
//
// +kubebuilder:object:root=true
type CanaryAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CanaryApp `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CanaryApp{}, &CanaryAppList{})
}
