package v1

// Condition types. Ready, Progressing and Stalled follow the kstatus
// conventions so that generic tools (Argo CD, Flux, kubectl wait) understand
// them; Analysis and WriteBack are this API's own.
const (
	// ConditionReady is True when the primary Deployment runs the stable
	// image, is available and all traffic goes to it.
	ConditionReady = "Ready"
	// ConditionProgressing is True while a canary or a promotion runs.
	ConditionProgressing = "Progressing"
	// ConditionReconciling mirrors Progressing while it is True, under the
	// name kstatus-based tools (Flux, kpt, kubectl wait) look for.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the operator cannot go on without a
	// person changing something (the spec, a foreign object, a credential).
	ConditionStalled = "Stalled"
	// ConditionAnalysis reports the latest analysis check.
	ConditionAnalysis = "Analysis"
	// ConditionWriteBack reports writing the last outcome back to Git.
	ConditionWriteBack = "WriteBack"
)

// Condition reasons.
const (
	// ReasonInitializing: the primary Deployment is being created.
	ReasonInitializing = "Initializing"
	// ReasonStable: the app runs its stable image with all traffic.
	ReasonStable = "Stable"
	// ReasonPrimaryNotReady: the primary Deployment is not available.
	ReasonPrimaryNotReady = "PrimaryNotReady"
	// ReasonWaitingForCanary: the canary Deployment is starting.
	ReasonWaitingForCanary = "WaitingForCanary"
	// ReasonAnalysing: traffic is shifting to the canary under analysis.
	ReasonAnalysing = "Analysing"
	// ReasonPromoting: the primary Deployment rolls out the canary's image.
	ReasonPromoting = "Promoting"
	// ReasonPromoted: the last canary was promoted.
	ReasonPromoted = "Promoted"
	// ReasonRolledBack: the last canary was rolled back; spec.image names a
	// failed image.
	ReasonRolledBack = "RolledBack"
	// ReasonCanaryNotReady: the canary did not become available in time.
	ReasonCanaryNotReady = "CanaryNotReady"
	// ReasonAnalysisFailed: the query found the release bad.
	ReasonAnalysisFailed = "AnalysisFailed"
	// ReasonImagePreviouslyFailed: spec.image is recorded as failed and is
	// not canaried again until spec.image names another image or the record
	// is removed.
	ReasonImagePreviouslyFailed = "ImagePreviouslyFailed"
	// ReasonForeignObject: an object with a name the operator needs exists
	// and is not owned by this CanaryApp; it is never adopted.
	ReasonForeignObject = "ForeignObject"
	// ReasonReconcileError: the last reconcile failed on an error that is
	// retried (the API server or a webhook answered with an error).
	ReasonReconcileError = "ReconcileError"
	// ReasonInvalidSpec: the spec passed schema validation but cannot be
	// acted on.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonInvalidTemplate: spec.template has a field a PodSpec does not
	// have, its containerName names no container, or the API server
	// refused the Deployment built from it; nothing is applied until it is
	// fixed.
	ReasonInvalidTemplate = "InvalidTemplate"
	// ReasonCheckPassed, ReasonCheckFailed, ReasonCheckInconclusive report
	// the latest analysis check.
	ReasonCheckPassed       = "CheckPassed"
	ReasonCheckFailed       = "CheckFailed"
	ReasonCheckInconclusive = "CheckInconclusive"
	// ReasonWriteBackPending, ReasonWriteBackSucceeded, ReasonWriteBackFailed,
	// ReasonNoCredentials, ReasonRepositoryUnknown and
	// ReasonPullRequestClosed report the Git write-back.
	ReasonWriteBackPending   = "WriteBackPending"
	ReasonWriteBackSucceeded = "WriteBackSucceeded"
	ReasonWriteBackFailed    = "WriteBackFailed"
	ReasonNoCredentials      = "NoCredentials"
	ReasonRepositoryUnknown  = "RepositoryUnknown"
	ReasonPullRequestOpen    = "PullRequestOpen"
	ReasonPullRequestClosed  = "PullRequestClosed"
	// ReasonWriteBackNotPermitted: the admin's policy does not let this app
	// write to the Git location it names (credential scope, Argo CD
	// provenance, write mode). Nothing was fetched; the in-cluster outcome
	// stands. A person must change the spec or the policy.
	ReasonWriteBackNotPermitted = "WriteBackNotPermitted"
	// ReasonUnverifiedOutcome: status.writeBack names an outcome the owned
	// Deployments do not back (the primary does not run its image, or the
	// failed image was never this app's canary), so it is not written.
	ReasonUnverifiedOutcome = "UnverifiedOutcome"
	// ReasonWriteBackCrashed: attempts at this write-back ended without a
	// result (the operator died during them) too often; it is not tried
	// again until the spec changes.
	ReasonWriteBackCrashed = "WriteBackCrashed"
	// ReasonPrometheusURLNotAllowed: spec.prometheusURL is outside the
	// admin's allow-list; no request was made, the canary holds and never
	// promotes.
	ReasonPrometheusURLNotAllowed = "PrometheusURLNotAllowed"
	// ReasonRouteNotAllowed: spec.hosts or spec.gateways name a host or
	// gateway the admin does not allow for this namespace (for the
	// gatewayapi router: spec.traffic.gatewayapi.parentRefs); the routes
	// carry only what is allowed, at least the app's own Service.
	ReasonRouteNotAllowed = "RouteNotAllowed"

	// ReasonWaitingForApproval: the canary passed its last step and waits
	// at the approval gate for spec.approvedImage.
	ReasonWaitingForApproval = "WaitingForApproval"
	// ReasonApproved: spec.approvedImage named the canary at the gate.
	ReasonApproved = "Approved"
	// ReasonSuspended: spec.suspend froze the running canary.
	ReasonSuspended = "Suspended"
	// ReasonResumed: spec.suspend was cleared; the step clock runs again.
	ReasonResumed = "Resumed"
	// ReasonAborted: a person asked to roll the canary back.
	ReasonAborted = "Aborted"
	// ReasonRetryAllowed: a person allowed a failed image again.
	ReasonRetryAllowed = "RetryAllowed"
	// ReasonRejectedInReview: the approval pull request was closed
	// unmerged; the canary was rolled back.
	ReasonRejectedInReview = "RejectedInReview"
	// ReasonRouterNotEnabled: spec.traffic.provider names a traffic router
	// the operator does not run (--traffic-routers); nothing is deployed
	// or routed until the spec or the operator changes.
	ReasonRouterNotEnabled = "RouterNotEnabled"
	// ReasonQueued: a new image waits for a free slot under the cap on
	// canaries progressing at once (Progressing=False).
	ReasonQueued = "Queued"
)
