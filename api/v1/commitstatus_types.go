package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Reasons of status.commitStatus.reason.
const (
	// ReasonCommitStatusNotApplicable: no commit status is reported for
	// this canary: the app is not managed by an Argo CD Application, Argo
	// CD reports no commit, the repository is not on the GitHub API of the
	// admin's credential, or the credential has no GitHub token.
	ReasonCommitStatusNotApplicable = "CommitStatusNotApplicable"
	// ReasonCommitStatusNotPermitted: the admin's credential scope refuses
	// commit statuses for this app, its Argo CD Application does not prove
	// it, or the commit recorded is not one the Application synced.
	ReasonCommitStatusNotPermitted = "CommitStatusNotPermitted"
	// ReasonCommitStatusFailed: the last attempt failed; it is retried
	// with backoff.
	ReasonCommitStatusFailed = "CommitStatusFailed"
)

// CommitStatusReport is the commit status canaryop reports on GitHub for
// the change that introduced the canary image: the commit the managing
// Argo CD Application had synced when the canary started. It shows on the
// commit (and the pull request that merged it) as pending during the
// analysis, success on promotion and failure on rollback.
type CommitStatusReport struct {
	// image is the canary image the change introduced.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
	// revision is the commit SHA of the change; empty while unknown or
	// when nothing is reported (see reason).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Revision string `json:"revision,omitempty"`
	// repository is owner/name of the GitHub repository.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Repository string `json:"repository,omitempty"`
	// context is the status's context on GitHub:
	// canaryop/canary/<namespace>/<name>.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Context string `json:"context,omitempty"`
	// state is the state last reported: pending, success, failure or
	// error (the canary stopped without a verdict).
	// +optional
	// +kubebuilder:validation:MaxLength=16
	State string `json:"state,omitempty"`
	// description is the one line last reported.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Description string `json:"description,omitempty"`
	// reportedAt is when state was reported.
	// +optional
	ReportedAt *metav1.Time `json:"reportedAt,omitempty"`
	// attempts counts the failed attempts in a row since the last report.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// lastAttemptAt is when the last failed attempt ended.
	// +optional
	LastAttemptAt *metav1.Time `json:"lastAttemptAt,omitempty"`
	// reason is set when nothing is (or could last be) reported:
	// CommitStatusNotApplicable, CommitStatusNotPermitted or
	// CommitStatusFailed.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason,omitempty"`
	// message explains reason. It never repeats GitHub's answer or a
	// credential.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}
