// Package notify tells people about a CanaryApp's transitions through the
// platform admin's notification providers (Slack, Microsoft Teams, a JSON
// webhook). The controller hands every transition to a Notifier, which
// never blocks: delivery runs in worker pools of its own, one per
// provider, with retries, deadlines and size bounds, so a slow or hanging
// receiver never delays a rollback.
//
// Providers are Secrets in the operator's namespace (see Store); a
// CanaryApp only names one in spec.notifications. Each provider type is a
// Format in a package of its own (notify/slack, notify/teams,
// notify/webhook); notify/providers lists them.
package notify

import (
	"context"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/rollout"
)

// Notifier is the controller's seam to notifications.
type Notifier interface {
	// Notify queues e for the providers app subscribes to for e.Kind. It
	// returns at once whatever the providers do; app is read only during
	// the call.
	Notify(ctx context.Context, app *v1.CanaryApp, e Event)
	// Check reports whether every provider in app's spec.notifications may
	// serve it: nil, or an error with a condition reason (Reason()).
	Check(ctx context.Context, app *v1.CanaryApp) error
}

// Format turns an event into the body of the request a provider type
// expects. A Format never sees the provider's address or credentials.
type Format interface {
	Body(e Event) ([]byte, error)
}

// Event is one transition as it is sent. It carries what the status says,
// never a credential or an answer of an outside system.
type Event struct {
	Kind    v1.NotificationEvent
	Warning bool
	// Reason is the transition's reason (v1.Reason*), Message its text.
	Reason, Message string
	Time            time.Time
	Namespace, Name string
	// Image is the image the event is about: the canary, the promoted or
	// the rolled back image, the image a write-back writes.
	Image                    string
	StableImage, CanaryImage string
	Weight                   int32
	// Check is the last analysis check, nil before the first.
	Check *Check
	// Commit and PullRequestURL link the write-back, when known.
	Commit, PullRequestURL string
}

// Check is the last analysis check of an event.
type Check struct {
	Weight  int32
	Value   string
	Verdict v1.CheckVerdict
}

// KindOf is the notification kind of a transition, from its reason; false
// for transitions no one subscribes to (initializing, promoting, a canary
// stopped because spec.image went back).
func KindOf(reason string) (v1.NotificationEvent, bool) {
	switch reason {
	case v1.ReasonWaitingForCanary:
		return v1.EventCanaryStarted, true
	case v1.ReasonAnalysing:
		return v1.EventWeightChanged, true
	case v1.ReasonWaitingForApproval:
		return v1.EventWaitingForApproval, true
	case v1.ReasonPromoted:
		return v1.EventPromoted, true
	case v1.ReasonRolledBack:
		return v1.EventRolledBack, true
	case v1.ReasonWriteBackSucceeded:
		return v1.EventWriteBackDone, true
	case v1.ReasonPullRequestOpen:
		return v1.EventPullRequestOpened, true
	case v1.ReasonPullRequestMerged:
		return v1.EventPullRequestMerged, true
	case v1.ReasonPullRequestClosed:
		return v1.EventPullRequestClosed, true
	case v1.ReasonWriteBackFailed, v1.ReasonNoCredentials, v1.ReasonRepositoryUnknown, v1.ReasonWriteBackNotPermitted,
		v1.ReasonInvalidSpec, v1.ReasonUnverifiedOutcome, v1.ReasonWriteBackCrashed:
		// The reasons of status.writeBack.errorReason: the write-back
		// controller reports only its own failures with them.
		return v1.EventWriteBackFailed, true
	}
	return "", false
}

// NewEvent describes transition e of app at now; false when it is of no
// kind (KindOf).
func NewEvent(app *v1.CanaryApp, e rollout.Event, now time.Time) (Event, bool) {
	kind, ok := KindOf(e.Reason)
	if !ok {
		return Event{}, false
	}
	st := &app.Status
	if kind == v1.EventWriteBackFailed && st.WriteBack != nil && !powerOfTwo(st.WriteBack.Attempts) {
		// A write-back is retried with backoff for as long as it fails:
		// people hear of attempts 1, 2, 4, 8, ..., not of every one.
		return Event{}, false
	}
	out := Event{
		Kind: kind, Warning: e.Warning, Reason: e.Reason, Message: e.Message, Time: now,
		Namespace: app.Namespace, Name: app.Name,
		StableImage: st.StableImage, CanaryImage: st.CanaryImage, Weight: st.CanaryWeight,
		Image: st.CanaryImage,
	}
	if n := len(st.Checks); n > 0 {
		c := st.Checks[n-1]
		out.Check = &Check{Weight: c.Weight, Value: c.Value, Verdict: c.Verdict}
	}
	switch kind {
	case v1.EventPromoted:
		out.Image = st.StableImage
	case v1.EventRolledBack:
		if n := len(st.FailedImages); n > 0 {
			out.Image = st.FailedImages[n-1].Image
		}
	}
	if wb := st.WriteBack; wb != nil {
		out.Commit, out.PullRequestURL = wb.Commit, wb.PullRequestURL
		if isWriteBack(kind) {
			out.Image = wb.Image
			if wb.Outcome == v1.OutcomeRolledBack {
				out.Image = wb.FailedImage
			}
		}
	}
	return out, true
}

func powerOfTwo(n int32) bool { return n <= 1 || n&(n-1) == 0 }

func isWriteBack(k v1.NotificationEvent) bool {
	switch k {
	case v1.EventWriteBackDone, v1.EventWriteBackFailed, v1.EventPullRequestOpened, v1.EventPullRequestMerged, v1.EventPullRequestClosed:
		return true
	}
	return false
}

// Subscribed reports whether n asks for kind (an empty list asks for all).
func Subscribed(n v1.Notification, kind v1.NotificationEvent) bool {
	if len(n.Events) == 0 {
		return true
	}
	for _, k := range n.Events {
		if k == kind {
			return true
		}
	}
	return false
}
