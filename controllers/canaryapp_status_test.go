package controllers

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.app()
			setConditions(a, &tc.obs)
			for _, c := range []struct{ typ, want string }{{v1.ConditionReady, tc.ready}, {v1.ConditionProgressing, tc.prog}, {v1.ConditionStalled, tc.stall}} {
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
