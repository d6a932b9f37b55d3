package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ApprovalPolicy says whether a canary that passed its last step is
// promoted on its own or waits for a person.
// +kubebuilder:validation:Enum=Automatic;Manual
type ApprovalPolicy string

const (
	// ApprovalAutomatic promotes a canary that passed its last step.
	ApprovalAutomatic ApprovalPolicy = "Automatic"
	// ApprovalManual holds a canary that passed its last step at that
	// weight, checks still running, until spec.approvedImage names it.
	ApprovalManual ApprovalPolicy = "Manual"
)

// One-shot requests. Each annotation holds a request id (any string a
// person or tool picks, for example a timestamp); the operator acts on a
// request once and acknowledges its id in status.requests, so the same
// annotation read again (a resync, a restart, a second delivery) does
// nothing. RequestedByAnnotation, when set with a request, says who asked;
// it is recorded, not trusted for anything.
const (
	// AbortAnnotation: roll the running canary back now and record its
	// image as failed ("aborted by a person").
	AbortAnnotation = "canary.atze.io/abort"
	// RetryAnnotation: "<id> <image>" allows image again: its failure
	// record is removed (from Git too when the app writes back).
	RetryAnnotation = "canary.atze.io/retry"
	// RequestedByAnnotation names who made the last request.
	RequestedByAnnotation = "canary.atze.io/requested-by"
)

// Actions recorded in status.lastAction.
const (
	ActionAbort   = "Abort"
	ActionRetry   = "Retry"
	ActionApprove = "Approve"
)

// RequestStatus acknowledges the one-shot requests acted on.
type RequestStatus struct {
	// abort is the id of the last abort request acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Abort string `json:"abort,omitempty"`
	// retry is the id of the last retry request acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Retry string `json:"retry,omitempty"`
}

// ActionRecord is a request a person made and what came of it.
type ActionRecord struct {
	// action is Abort, Retry or Approve.
	// +required
	Action string `json:"action"`
	// id is the request id (empty for an approval, which is a spec field).
	// +optional
	ID string `json:"id,omitempty"`
	// by is who asked, as the request said (canary.atze.io/requested-by).
	// +optional
	By string `json:"by,omitempty"`
	// image is the image the action was about.
	// +optional
	Image string `json:"image,omitempty"`
	// at is when the operator acted on it.
	// +required
	At metav1.Time `json:"at"`
	// result says what the operator did, in a few words.
	// +optional
	Result string `json:"result,omitempty"`
}

// ApprovalStatus is a canary waiting at the approval gate.
type ApprovalStatus struct {
	// image is the canary image waiting for approval.
	// +required
	Image string `json:"image"`
	// requestedAt is when the canary reached the gate.
	// +required
	RequestedAt metav1.Time `json:"requestedAt"`
}
