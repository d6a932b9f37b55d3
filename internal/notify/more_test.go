package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/notify"
)

func blockUntil(c chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-c:
		case <-r.Context().Done():
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Malformed or absent providers are refused with their own reasons, and
// no refusal quotes a value of the Secret.
func TestStoreRefusals(t *testing.T) {
	unlabelled := providerSecret("unlabelled", map[string]string{"type": "slack", "address": "https://hooks.example/" + planted, "namespaces": "*"})
	unlabelled.Labels = nil
	reader := fakeReader(t, unlabelled,
		providerSecret("bad-type", map[string]string{"type": "pagerduty", "address": "https://hooks.example/" + planted, "namespaces": "*"}),
		providerSecret("bad-address", map[string]string{"type": "slack", "address": "https://user:" + planted + "@hooks.example/", "namespaces": "*"}),
		providerSecret("ftp", map[string]string{"type": "slack", "address": "ftp://hooks.example/" + planted, "namespaces": "*"}),
		providerSecret("bad-header", map[string]string{"type": "webhook", "address": "https://hooks.example/", "namespaces": "*", "headers": planted}),
		providerSecret("bad-glob", map[string]string{"type": "webhook", "address": "https://hooks.example/", "namespaces": "[shop"}),
		providerSecret("ok", map[string]string{"type": "webhook", "address": "https://hooks.example/" + planted, "namespaces": "shop", "token": planted}),
	)
	s := notify.NewProviders(reader, operatorNS, "slack", "teams", "webhook")
	for name, want := range map[string]string{
		"missing":     v1.ReasonNotificationProviderNotFound,
		"unlabelled":  v1.ReasonNotificationProviderNotFound,
		"bad-type":    v1.ReasonNotificationProviderInvalid,
		"bad-address": v1.ReasonNotificationProviderInvalid,
		"ftp":         v1.ReasonNotificationProviderInvalid,
		"bad-header":  v1.ReasonNotificationProviderInvalid,
		"bad-glob":    v1.ReasonNotificationProviderNotAllowed,
	} {
		_, err := s.Get(context.Background(), name, "shop")
		var refused *notify.RefusedError
		if !errors.As(err, &refused) || refused.Reason() != want {
			t.Errorf("%s: %v, want %s", name, err, want)
			continue
		}
		if strings.Contains(err.Error(), planted) || strings.Contains(err.Error(), "hooks.example") {
			t.Errorf("%s: refusal quotes the Secret: %v", name, err)
		}
	}
	ep, err := s.Get(context.Background(), "ok", "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := sprintf(f, ep); strings.Contains(out, planted) {
			t.Errorf("%s of an Endpoint prints a secret: %s", f, out)
		}
	}
}

func TestKindOf(t *testing.T) {
	for reason, want := range map[string]v1.NotificationEvent{
		v1.ReasonWaitingForCanary:      v1.EventCanaryStarted,
		v1.ReasonAnalysing:             v1.EventWeightChanged,
		v1.ReasonWaitingForApproval:    v1.EventWaitingForApproval,
		v1.ReasonPromoted:              v1.EventPromoted,
		v1.ReasonRolledBack:            v1.EventRolledBack,
		v1.ReasonWriteBackSucceeded:    v1.EventWriteBackDone,
		v1.ReasonNoCredentials:         v1.EventWriteBackFailed,
		v1.ReasonWriteBackNotPermitted: v1.EventWriteBackFailed,
		v1.ReasonPullRequestOpen:       v1.EventPullRequestOpened,
		v1.ReasonPullRequestMerged:     v1.EventPullRequestMerged,
		v1.ReasonPullRequestClosed:     v1.EventPullRequestClosed,
	} {
		if got, ok := notify.KindOf(reason); !ok || got != want {
			t.Errorf("KindOf(%s) = %s, %v; want %s", reason, got, ok, want)
		}
	}
	for _, r := range []string{v1.ReasonInitializing, v1.ReasonPromoting, v1.ReasonStable} {
		if k, ok := notify.KindOf(r); ok {
			t.Errorf("KindOf(%s) = %s, want none", r, k)
		}
	}
	seen := map[v1.NotificationEvent]bool{}
	for _, r := range []string{v1.ReasonWaitingForCanary, v1.ReasonAnalysing, v1.ReasonWaitingForApproval, v1.ReasonPromoted, v1.ReasonRolledBack,
		v1.ReasonWriteBackSucceeded, v1.ReasonWriteBackFailed, v1.ReasonPullRequestOpen, v1.ReasonPullRequestMerged, v1.ReasonPullRequestClosed} {
		k, _ := notify.KindOf(r)
		seen[k] = true
	}
	for _, k := range v1.NotificationEvents {
		if !seen[k] {
			t.Errorf("no reason maps to %s", k)
		}
	}
}

// A write-back event is about the image it writes and links the commit
// or pull request.
func TestNewEventOfAWriteBack(t *testing.T) {
	a := app("shop")
	a.Status.WriteBack.Pending, a.Status.WriteBack.PullRequestURL = false, "https://github.com/acme/deploy/pull/7"
	e := event(t, a, v1.ReasonPullRequestOpen, "rollback proposed")
	if e.Kind != v1.EventPullRequestOpened || e.Image != "ghcr.io/acme/web:v3" || e.PullRequestURL != "https://github.com/acme/deploy/pull/7" {
		t.Errorf("event = %+v", e)
	}
	if e.Check == nil || e.Check.Value != "5" {
		t.Errorf("event carries no last check: %+v", e.Check)
	}
}

func sprintf(f string, v any) string { return fmt.Sprintf(f, v) }

// A failing write-back is retried for as long as it fails; its
// notifications thin out to attempts 1, 2, 4, 8, ...
func TestWriteBackFailuresThinOut(t *testing.T) {
	a := app("shop")
	var sent []int32
	for n := int32(1); n <= 20; n++ {
		a.Status.WriteBack.Attempts = n
		if _, ok := notify.NewEvent(a, rolloutEvent(v1.ReasonNoCredentials, "Git write-back failed"), time.Now()); ok {
			sent = append(sent, n)
		}
	}
	if want := []int32{1, 2, 4, 8, 16}; !slices.Equal(sent, want) {
		t.Errorf("notified attempts %v, want %v", sent, want)
	}
}
