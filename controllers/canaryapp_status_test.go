package controllers

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/traffic"
)

func TestSetConditions(t *testing.T) {
	stable := func() *v1.CanaryApp {
		return &v1.CanaryApp{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 3},
			Spec:       v1.CanaryAppSpec{Image: "app:v1"},
			Status:     v1.CanaryAppStatus{StableImage: "app:v1", Phase: v1.PhaseStable},
		}
	}
	cases := []struct {
		name  string
		app   func() *v1.CanaryApp
		obs   observation
		ready string
		prog  string
		stall string
	}{
		{"stable and available", stable, observation{primaryAvailable: true}, "True/Stable", "False/Stable", ""},
		{"primary not available", stable, observation{}, "False/PrimaryNotReady", "True/Initializing", ""},
		{"canary waiting", func() *v1.CanaryApp {
			a := stable()
			a.Spec.Image, a.Status.CanaryImage = "app:v2", "app:v2"
			return a
		}, observation{primaryAvailable: true}, "False/WaitingForCanary", "True/WaitingForCanary", ""},
		{"rolled back, spec still names the failed image", func() *v1.CanaryApp {
			a := stable()
			a.Spec.Image = "app:v2"
			a.Status.FailedImages = []v1.FailedImage{{Image: "app:v2"}}
			return a
		}, observation{primaryAvailable: true}, "False/RolledBack", "False/RolledBack", "True/RolledBack"},
		{"failed image recorded in Git", func() *v1.CanaryApp {
			a := stable()
			a.Spec.Image = "app:v2"
			a.Spec.FailedImages = []v1.FailedImage{{Image: "app:v2"}}
			return a
		}, observation{primaryAvailable: true}, "False/ImagePreviouslyFailed", "False/ImagePreviouslyFailed", "True/ImagePreviouslyFailed"},
		{"foreign object", stable, observation{foreign: &apply.ForeignObjectError{GVK: schema.GroupVersionKind{Kind: "Service"}, Namespace: "shop", Name: "web"}},
			"False/ForeignObject", "False/ForeignObject", "True/ForeignObject"},
		{"transient error keeps the last Progressing", stable, observation{err: errors.New("etcd timeout")}, "False/ReconcileError", "", ""},
		{"route refused while stable", stable, observation{primaryAvailable: true, routeRefused: &traffic.RouteNotAllowedError{Namespace: "shop", Name: "web"}},
			"True/Stable", "False/Stable", "True/RouteNotAllowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.app()
			setConditions(a, &tc.obs)
			for _, c := range []struct{ typ, want string }{{v1.ConditionReady, tc.ready}, {v1.ConditionProgressing, tc.prog}, {v1.ConditionReconciling, reconciling(tc.prog)}, {v1.ConditionStalled, tc.stall}} {
				got := ""
				if cond := meta.FindStatusCondition(a.Status.Conditions, c.typ); cond != nil {
					got = string(cond.Status) + "/" + cond.Reason
					if cond.ObservedGeneration != 3 {
						t.Errorf("%s: observedGeneration %d", c.typ, cond.ObservedGeneration)
					}
				}
				if got != c.want {
					t.Errorf("%s = %q, want %q", c.typ, got, c.want)
				}
			}
		})
	}
}

// reconciling is the Reconciling condition kstatus tools read: True with
// Progressing's reason while Progressing is True, absent otherwise.
func reconciling(progressing string) string {
	if len(progressing) > 5 && progressing[:5] == "True/" {
		return progressing
	}
	return ""
}

// TestWriteBackConditions: WriteBack, and its effect on Stalled and Ready,
// derived from status.writeBack alone.
func TestWriteBackConditions(t *testing.T) {
	base := func(wb v1.WriteBackStatus) *v1.CanaryApp {
		wb.Outcome, wb.Image, wb.FailedImage = v1.OutcomeRolledBack, "app:v1", "app:v2"
		return &v1.CanaryApp{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 3},
			Spec:       v1.CanaryAppSpec{Image: "app:v2", GitOps: &v1.GitOpsSpec{}},
			Status: v1.CanaryAppStatus{StableImage: "app:v1", Phase: v1.PhaseFailed, WriteBack: &wb,
				FailedImages: []v1.FailedImage{{Image: "app:v2"}}},
		}
	}
	cases := []struct {
		name                    string
		wb                      v1.WriteBackStatus
		writeBack, stall, ready string
	}{
		{"pending", v1.WriteBackStatus{Pending: true}, "False/WriteBackPending", "True/RolledBack", "False/RolledBack"},
		{"transient error", v1.WriteBackStatus{Pending: true, Attempts: 1, Error: "push: 502", ErrorReason: v1.ReasonWriteBackFailed},
			"False/WriteBackFailed", "True/RolledBack", "False/RolledBack"},
		{"no credentials stalls", v1.WriteBackStatus{Pending: true, Attempts: 1, Error: "no git credentials", ErrorReason: v1.ReasonNoCredentials, Stalled: true},
			"False/NoCredentials", "True/NoCredentials", "False/RolledBack"},
		{"not permitted stalls", v1.WriteBackStatus{Pending: true, Attempts: 1, Error: "not permitted", ErrorReason: v1.ReasonWriteBackNotPermitted, Stalled: true},
			"False/WriteBackNotPermitted", "True/WriteBackNotPermitted", "False/RolledBack"},
		{"crashed", v1.WriteBackStatus{Pending: true, InterruptedAttempts: 3}, "False/WriteBackCrashed", "True/WriteBackCrashed", "False/RolledBack"},
		{"committed", v1.WriteBackStatus{Commit: "abc"}, "True/WriteBackSucceeded", "True/RolledBack", "False/RolledBack"},
		{"pull request open", v1.WriteBackStatus{Commit: "abc", PullRequestURL: "https://github.com/a/b/pull/1", PullRequestState: "open"},
			"True/PullRequestOpen", "True/RolledBack", "False/RolledBack"},
		{"pull request closed", v1.WriteBackStatus{Commit: "abc", PullRequestURL: "https://github.com/a/b/pull/1", PullRequestState: "closed"},
			"False/PullRequestClosed", "True/RolledBack", "False/RolledBack"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := base(tc.wb)
			setConditions(a, &observation{primaryAvailable: true})
			for _, c := range []struct{ typ, want string }{{v1.ConditionWriteBack, tc.writeBack}, {v1.ConditionStalled, tc.stall}, {v1.ConditionReady, tc.ready}} {
				got := ""
				if cond := meta.FindStatusCondition(a.Status.Conditions, c.typ); cond != nil {
					got = string(cond.Status) + "/" + cond.Reason
				}
				if got != c.want {
					t.Errorf("%s = %q, want %q", c.typ, got, c.want)
				}
			}
		})
	}
}
