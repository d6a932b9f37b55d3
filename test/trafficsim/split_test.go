package main

import (
	"math"
	"strconv"
	"testing"
	"time"

	istioapi "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	app = "canaryapp-sample"
	ns  = "default"
)

func virtualService(name string, weights map[string]int32, order ...string) *istionetv1.VirtualService {
	vs := &istionetv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
	}
	vs.Spec.Hosts = []string{name}
	route := &istioapi.HTTPRoute{}
	for _, subset := range order {
		route.Route = append(route.Route, &istioapi.HTTPRouteDestination{
			Destination: &istioapi.Destination{Host: name, Subset: subset},
			Weight:      weights[subset],
		})
	}
	vs.Spec.Http = []*istioapi.HTTPRoute{route}
	return vs
}

func weighted(primary, canary int32) *istionetv1.VirtualService {
	return virtualService(app, map[string]int32{SubsetPrimary: primary, SubsetCanary: canary}, SubsetPrimary, SubsetCanary)
}

func deployment(name, image string, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: ContainerName, Image: image}},
			}},
		},
		Status: appsv1.DeploymentStatus{AvailableReplicas: available},
	}
}

func deployments(ds ...*appsv1.Deployment) map[string]*appsv1.Deployment {
	m := map[string]*appsv1.Deployment{}
	for _, d := range ds {
		m[d.Name] = d
	}
	return m
}

func TestBuildSplit(t *testing.T) {
	both := deployments(
		deployment(app, "atzedevries/go-status-code-server:v1", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v3", 1),
	)
	for _, tc := range []struct {
		name string
		vs   *istionetv1.VirtualService
		deps map[string]*appsv1.Deployment
		want string
	}{
		{"no virtualservice", nil, both, "unrouted: no_virtualservice"},
		{"no http route", &istionetv1.VirtualService{}, both, "unrouted: no_route"},
		{"canary at 10", weighted(90, 10), both, "primary=90(v1) canary=10(v3)"},
		{"stable", weighted(100, 0), both, "primary=100(v1) canary=0(v3)"},
		{"canary deployment gone", weighted(100, 0), deployments(both[app]), "primary=100(v1) canary=0(no deployment canaryapp-sample-canary)"},
		{"canary not available", weighted(50, 50), deployments(both[app], deployment(app+"-canary", "x:v2", 0)), "primary=50(v1) canary=50(v2, no available pods)"},
		{"destination without subset is the primary", virtualService(app, map[string]int32{"": 100}, ""), both, "primary=100(v1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BuildSplit(app, ns, tc.vs, tc.deps).String(); got != tc.want {
				t.Errorf("split = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildSplitReadsTheAppContainer(t *testing.T) {
	d := deployment(app, "atzedevries/go-status-code-server:v2", 1)
	d.Spec.Template.Spec.Containers = append([]corev1.Container{{Name: "istio-proxy", Image: "proxyv2:1.32"}}, d.Spec.Template.Spec.Containers...)
	s := BuildSplit(app, ns, weighted(100, 0), deployments(d))
	if got := s.Targets[0].Version(); got != "v2" {
		t.Errorf("version = %q, want v2 from the container named %q", got, ContainerName)
	}
}

func TestPickBoundaries(t *testing.T) {
	s := BuildSplit(app, ns, weighted(90, 10), nil)
	for _, tc := range []struct {
		r    float64
		want string
	}{
		{0, SubsetPrimary},
		{0.8999, SubsetPrimary},
		{0.9, SubsetCanary},
		{0.9999999, SubsetCanary},
		{math.Nextafter(1, 0), SubsetCanary},
	} {
		got, ok := s.Pick(tc.r)
		if !ok || got.Subset != tc.want {
			t.Errorf("Pick(%v) = %q, %v; want %q", tc.r, got.Subset, ok, tc.want)
		}
	}
	if got, ok := BuildSplit(app, ns, weighted(100, 0), nil).Pick(math.Nextafter(1, 0)); !ok || got.Subset != SubsetPrimary {
		t.Errorf("weight 0 must never be picked, got %q", got.Subset)
	}
	if _, ok := BuildSplit(app, ns, weighted(0, 0), nil).Pick(0.5); ok {
		t.Error("all weights 0: want no target")
	}
	if got, ok := BuildSplit(app, ns, virtualService(app, map[string]int32{SubsetPrimary: 0}, SubsetPrimary), nil).Pick(0.5); !ok || got.Subset != SubsetPrimary {
		t.Error("a lone destination takes all traffic whatever its weight")
	}
	if _, ok := BuildSplit(app, ns, nil, nil).Pick(0.5); ok {
		t.Error("no VirtualService: want no target")
	}
}

// countBySubset makes n requests and counts the answered ones by subset and
// by subset+code.
func countBySubset(tr *Traffic, s Split, n int) (map[string]int, map[string]int) {
	subsets, codes := map[string]int{}, map[string]int{}
	for range n {
		res := tr.Request(s)
		if res.Unrouted != "" {
			subsets["unrouted:"+res.Unrouted]++
			continue
		}
		subsets[res.Target.Subset]++
		codes[res.Target.Subset+"/"+res.Target.Version()+"/"+res.Path+"/"+strconv.Itoa(res.Code)]++
	}
	return subsets, codes
}

func TestWeightedSplitFollowsTheWeights(t *testing.T) {
	deps := deployments(
		deployment(app, "atzedevries/go-status-code-server:v1", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v3", 1),
	)
	const n = 20000
	for _, canary := range []int32{0, 10, 30, 50, 100} {
		tr := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), NewMetrics(), 42)
		got, _ := countBySubset(tr, BuildSplit(app, ns, weighted(100-canary, canary), deps), n)
		share := float64(got[SubsetCanary]) / n
		// With n=20000 the standard deviation of the share is at most 0.0036;
		// the seed is fixed, so this is not a flaky bound but a check that
		// the split is the weights and not, say, their complement.
		if math.Abs(share-float64(canary)/100) > 0.015 {
			t.Errorf("canary weight %d: canary got %.4f of %d requests", canary, share, n)
		}
		if got[SubsetPrimary]+got[SubsetCanary] != n {
			t.Errorf("canary weight %d: %d requests unrouted: %v", canary, n-got[SubsetPrimary]-got[SubsetCanary], got)
		}
	}
}

func TestSameSeedSameRequests(t *testing.T) {
	s := BuildSplit(app, ns, weighted(70, 30), deployments(
		deployment(app, "a:v1", 1), deployment(app+"-canary", "a:v3", 1)))
	a := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), NewMetrics(), 7)
	b := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), NewMetrics(), 7)
	c := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), NewMetrics(), 8)
	differs := false
	for i := range 1000 {
		ra, rb, rc := a.Request(s), b.Request(s), c.Request(s)
		if ra != rb {
			t.Fatalf("request %d: same seed gave %+v and %+v", i, ra, rb)
		}
		differs = differs || ra != rc
	}
	if !differs {
		t.Error("another seed gave the same 1000 requests")
	}
}

func TestErrorsOnlyFromTheFailingCanary(t *testing.T) {
	deps := deployments(
		deployment(app, "atzedevries/go-status-code-server:v2", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v3", 1),
	)
	tr := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), NewMetrics(), 1)
	_, codes := countBySubset(tr, BuildSplit(app, ns, weighted(90, 10), deps), 10000)
	if codes["primary/v2//nothello/500"] != 0 {
		t.Errorf("v2 primary answered 500: %v", codes)
	}
	// 10% to the canary, 20% of those to /nothello: about 200 of 10000.
	if e := codes["canary/v3//nothello/500"]; e < 150 || e > 250 {
		t.Errorf("v3 canary answered %d errors of 10000, want about 200: %v", e, codes)
	}
	if codes["primary/v2//nothello/200"] == 0 || codes["canary/v3//hello/200"] == 0 {
		t.Errorf("missing successful answers: %v", codes)
	}
}

func TestUnroutedRequestsAreNotAnswered(t *testing.T) {
	tr := NewTraffic(20, 0.5, NewResponder([]string{"v3"}), NewMetrics(), 1)
	for _, tc := range []struct {
		name  string
		split Split
		want  string
	}{
		{"no virtualservice", BuildSplit(app, ns, nil, nil), "unrouted:" + UnroutedNoVirtualService},
		{"no deployment", BuildSplit(app, ns, weighted(100, 0), nil), "unrouted:" + UnroutedNoDeployment},
		{"no available pods", BuildSplit(app, ns, weighted(100, 0), deployments(deployment(app, "a:v1", 0))), "unrouted:" + UnroutedNoAvailablePods},
		{"all weights zero", BuildSplit(app, ns, weighted(0, 0), deployments(deployment(app, "a:v1", 1))), "unrouted:" + UnroutedNoRoute},
	} {
		got, _ := countBySubset(tr, tc.split, 100)
		if got[tc.want] != 100 || len(got) != 1 {
			t.Errorf("%s: got %v, want 100 %s", tc.name, got, tc.want)
		}
	}
}

func TestStepKeepsTheRate(t *testing.T) {
	s := BuildSplit(app, ns, weighted(100, 0), deployments(deployment(app, "a:v1", 1)))
	other := BuildSplit("other", ns, nil, nil)
	tr := NewTraffic(20, 0, NewResponder(nil), NewMetrics(), 1)
	made := 0
	// 30 uneven ticks adding up to 3s: 60 requests per app.
	for i := range 30 {
		made += tr.Step([]Split{s, other}, time.Duration(50+(i%3)*50)*time.Millisecond)
	}
	if made != 120 {
		t.Errorf("made %d requests in 3s at 20/s for 2 apps, want 120", made)
	}
	if got := tr.Step([]Split{s}, 10*time.Millisecond); got != 0 {
		t.Errorf("10ms at 20/s made %d requests, want 0 (a fifth of one is owed)", got)
	}
}
