package v1

// NotificationEvent is a kind of transition a CanaryApp can be notified of.
// +kubebuilder:validation:Enum=CanaryStarted;WeightChanged;WaitingForApproval;Promoted;RolledBack;WriteBackDone;WriteBackFailed;PullRequestOpened;PullRequestMerged;PullRequestClosed
type NotificationEvent string

const (
	// EventCanaryStarted: a canary Deployment of a new image was started.
	EventCanaryStarted NotificationEvent = "CanaryStarted"
	// EventWeightChanged: the canary's share of traffic changed.
	EventWeightChanged NotificationEvent = "WeightChanged"
	// EventWaitingForApproval: the canary passed its last step and waits
	// for a person's approval.
	EventWaitingForApproval NotificationEvent = "WaitingForApproval"
	// EventPromoted: the canary's image became the stable image.
	EventPromoted NotificationEvent = "Promoted"
	// EventRolledBack: the canary was rolled back, on every path (a failed
	// check, a canary never ready, a person's abort or rejection).
	EventRolledBack NotificationEvent = "RolledBack"
	// EventWriteBackDone: the outcome was committed to Git.
	EventWriteBackDone NotificationEvent = "WriteBackDone"
	// EventWriteBackFailed: an attempt to write the outcome to Git failed.
	EventWriteBackFailed NotificationEvent = "WriteBackFailed"
	// EventPullRequestOpened, EventPullRequestMerged, EventPullRequestClosed
	// follow a write-back pull request.
	EventPullRequestOpened NotificationEvent = "PullRequestOpened"
	EventPullRequestMerged NotificationEvent = "PullRequestMerged"
	EventPullRequestClosed NotificationEvent = "PullRequestClosed"
)

// NotificationEvents are all kinds, in the order of a release.
var NotificationEvents = []NotificationEvent{
	EventCanaryStarted, EventWeightChanged, EventWaitingForApproval, EventPromoted, EventRolledBack,
	EventWriteBackDone, EventWriteBackFailed, EventPullRequestOpened, EventPullRequestMerged, EventPullRequestClosed,
}

// Notification subscribes the app to one notification provider. The
// provider's address and credentials are the platform admin's (a Secret in
// the operator's namespace that names the namespaces it serves); the app
// only names it.
type Notification struct {
	// provider is the name of the admin's notification provider (the name
	// of its Secret in the operator's namespace).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Provider string `json:"provider"`

	// events are the kinds of transitions to send; empty sends every kind.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	Events []NotificationEvent `json:"events,omitempty"`
}

// WebhookType is when an analysis webhook is called.
// +kubebuilder:validation:Enum=PreRollout;Rollout;PostRollout
type WebhookType string

const (
	// WebhookPreRollout is called once the canary is available and before
	// it gets traffic; the canary stays at weight 0 until it answers 2xx.
	WebhookPreRollout WebhookType = "PreRollout"
	// WebhookRollout is called with every analysis check; an answer other
	// than 2xx counts as a failed check.
	WebhookRollout WebhookType = "Rollout"
	// WebhookPostRollout is told the outcome (promoted or rolled back); its
	// answer changes nothing.
	WebhookPostRollout WebhookType = "PostRollout"
)

// AnalysisWebhook calls one of the admin's webhook targets during the
// canary, as acceptance or load tests do. The target's URL and
// credentials are the admin's (a Secret in the operator's namespace that
// names the namespaces it serves); the app only names it.
type AnalysisWebhook struct {
	// name is the name of the admin's webhook target (the name of its
	// Secret in the operator's namespace).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`

	// type is PreRollout, Rollout or PostRollout.
	// +required
	Type WebhookType `json:"type"`

	// metadata is sent to the target with every call (for example the
	// test a load tester should run).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63 && size(self[k]) <= 1024)",message="webhook metadata keys must be at most 63 and values at most 1024 characters"
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ConditionNotifications reports whether every provider in
// spec.notifications may serve the app; absent without spec.notifications.
const ConditionNotifications = "Notifications"

// Reasons of notifications and analysis webhooks.
const (
	// ReasonPullRequestMerged: the write-back pull request was merged.
	ReasonPullRequestMerged = "PullRequestMerged"
	// ReasonNotificationsReady: every provider named may serve the app.
	ReasonNotificationsReady = "NotificationsReady"
	// ReasonNotificationProviderNotFound: no provider of that name.
	ReasonNotificationProviderNotFound = "NotificationProviderNotFound"
	// ReasonNotificationProviderNotAllowed: the provider's namespaces do
	// not include the app's; nothing is sent to it.
	ReasonNotificationProviderNotAllowed = "NotificationProviderNotAllowed"
	// ReasonNotificationProviderInvalid: the admin's provider Secret is
	// malformed (type, address); nothing is sent to it.
	ReasonNotificationProviderInvalid = "NotificationProviderInvalid"
	// ReasonWebhookNotFound, ReasonWebhookNotAllowed, ReasonWebhookInvalid:
	// an analysis webhook names no target of the admin's, one that does
	// not serve the app's namespace, or a malformed one; it is not called
	// and counts as not answering 2xx.
	ReasonWebhookNotFound   = "WebhookNotFound"
	ReasonWebhookNotAllowed = "WebhookNotAllowed"
	ReasonWebhookInvalid    = "WebhookInvalid"
	// ReasonPreRolloutWebhookFailed: a pre-rollout webhook did not answer
	// 2xx (or is not allowed); the canary holds at weight 0.
	ReasonPreRolloutWebhookFailed = "PreRolloutWebhookFailed"
	// ReasonRolloutWebhookFailed: a rollout webhook did not answer 2xx
	// (or is not allowed); the check counts as failed.
	ReasonRolloutWebhookFailed = "RolloutWebhookFailed"
)

// WebhookValue is the value of a status.checks entry that records the
// pre-rollout webhooks rather than a Prometheus query.
const WebhookValue = "pre-rollout webhooks"

// WebhooksOf returns the app's analysis webhooks of type t, in order.
func (s *CanaryAppSpec) WebhooksOf(t WebhookType) []AnalysisWebhook {
	if s.Analysis == nil {
		return nil
	}
	var out []AnalysisWebhook
	for _, w := range s.Analysis.Webhooks {
		if w.Type == t {
			out = append(out, w)
		}
	}
	return out
}
