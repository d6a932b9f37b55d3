package main

import (
	"math"
	"testing"

	istioapi "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/atzedevries/canaryop/internal/testenv"
)

// TestObserverFollowsTheLiveVirtualService runs against a real API server
// with Istio's CRDs: changing the VirtualService weights, or a Deployment's
// image, changes where the simulated requests land and what they answer.
func TestObserverFollowsTheLiveVirtualService(t *testing.T) {
	env := testenv.StartT(t)
	ctx := t.Context()
	c := env.Client
	namespace := env.NewNamespace(t)

	newDeployment := func(name, track, image string) *appsv1.Deployment {
		labels := map[string]string{"canary.atze.io/app": app, "canary.atze.io/track": track}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: image}}},
				},
			},
		}
		if err := c.Create(ctx, d); err != nil {
			t.Fatalf("creating Deployment %s: %v", name, err)
		}
		// envtest runs no controllers: report the pods available by hand.
		d.Status.Replicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = 1, 1, 1
		if err := c.Status().Update(ctx, d); err != nil {
			t.Fatalf("updating Deployment %s status: %v", name, err)
		}
		return d
	}
	newDeployment(app, SubsetPrimary, "atzedevries/go-status-code-server:v1")
	canary := newDeployment(app+"-canary", SubsetCanary, "atzedevries/go-status-code-server:v3")

	observer := NewObserver(c, namespace, []string{app})
	traffic := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), NewMetrics(), 5)
	const n = 4000
	observe := func(want string) Split {
		t.Helper()
		if err := observer.Observe(ctx); err != nil {
			t.Fatalf("Observe: %v", err)
		}
		s := observer.Splits()[0]
		if s.String() != want {
			t.Fatalf("split = %q, want %q", s, want)
		}
		return s
	}
	canaryShare := func(s Split) (share float64, errors int) {
		got, codes := countBySubset(traffic, s, n)
		return float64(got[SubsetCanary]) / n, codes["canary/v3//nothello/500"] + codes["primary/v3//nothello/500"]
	}

	observe("unrouted: no_virtualservice")

	vs := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace}}
	vs.Spec.Hosts = []string{app}
	vs.Spec.Http = []*istioapi.HTTPRoute{{Route: []*istioapi.HTTPRouteDestination{
		{Destination: &istioapi.Destination{Host: app, Subset: SubsetPrimary}, Weight: 100},
		{Destination: &istioapi.Destination{Host: app, Subset: SubsetCanary}, Weight: 0},
	}}}
	if err := c.Create(ctx, vs); err != nil {
		t.Fatalf("creating VirtualService: %v", err)
	}
	if share, errs := canaryShare(observe("primary=100(v1) canary=0(v3)")); share != 0 || errs != 0 {
		t.Errorf("weights 100/0: canary share %v, %d errors; want none", share, errs)
	}

	setWeights := func(primary, canary int32) {
		t.Helper()
		patch := client.MergeFrom(vs.DeepCopy())
		vs.Spec.Http[0].Route[0].Weight = primary
		vs.Spec.Http[0].Route[1].Weight = canary
		if err := c.Patch(ctx, vs, patch); err != nil {
			t.Fatalf("patching VirtualService weights: %v", err)
		}
	}
	setWeights(70, 30)
	share, errs := canaryShare(observe("primary=70(v1) canary=30(v3)"))
	if math.Abs(share-0.3) > 0.03 {
		t.Errorf("weights 70/30: canary share %v", share)
	}
	// 30% to v3, 20% of those to /nothello: about 240 of 4000.
	if errs < 180 || errs > 300 {
		t.Errorf("weights 70/30: %d errors from v3, want about 240", errs)
	}

	// A rollback puts the weight back; the failing canary gets nothing.
	setWeights(100, 0)
	if share, errs := canaryShare(observe("primary=100(v1) canary=0(v3)")); share != 0 || errs != 0 {
		t.Errorf("after rollback: canary share %v, %d errors; want none", share, errs)
	}

	// A new canary image is seen on the next read.
	patch := client.MergeFrom(canary.DeepCopy())
	canary.Spec.Template.Spec.Containers[0].Image = "atzedevries/go-status-code-server:v2"
	if err := c.Patch(ctx, canary, patch); err != nil {
		t.Fatalf("patching canary image: %v", err)
	}
	setWeights(50, 50)
	if share, errs := canaryShare(observe("primary=50(v1) canary=50(v2)")); math.Abs(share-0.5) > 0.03 || errs != 0 {
		t.Errorf("v2 canary at 50: canary share %v, %d errors; want about 0.5 and none", share, errs)
	}
}
