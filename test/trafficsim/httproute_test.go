package main

import (
	"math"
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/testenv"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/traffic/gatewayapi"
)

// operatorApp is a CanaryApp as the operator sees it, with a tester match.
func operatorApp(provider v1.TrafficProvider) *v1.CanaryApp {
	a := &v1.CanaryApp{}
	a.Name, a.Namespace = app, ns
	a.Spec.ImageListenPort = 8088
	a.Status.CanaryImage = "atzedevries/go-status-code-server:v2" // a canary runs
	a.Spec.Traffic = &v1.TrafficSpec{Provider: provider, CanaryMatch: []v1.TrafficMatch{
		{Headers: []v1.HeaderMatch{{Name: "X-Canary", Value: "always"}}},
		{Cookie: &v1.CookieMatch{Name: "tester", Value: "yes"}},
	}}
	return a
}

// TestSplitOfTheOperatorsRoutes reads the HTTPRoute and the VirtualService
// exactly as the operator's routers build them: the weights come from the
// weighted rule, and a request with the tester's header or cookie goes to
// the canary even at weight 0. On the HTTPRoute the answers count under the
// backend Service, as a mesh reports them.
func TestSplitOfTheOperatorsRoutes(t *testing.T) {
	deps := deployments(
		deployment(app, "atzedevries/go-status-code-server:v1", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v2", 1),
	)
	for _, provider := range []v1.TrafficProvider{v1.TrafficIstio, v1.TrafficGatewayAPI} {
		t.Run(string(provider), func(t *testing.T) {
			split := func(weight int32) Split {
				a := operatorApp(provider)
				if provider == v1.TrafficIstio {
					vs := weighted(0, 0)
					vs.Spec.Http = traffic.VirtualService(a, weight).Spec.Http
					return BuildSplit(app, ns, vs, deps)
				}
				return BuildHTTPRouteSplit(app, ns, gatewayapi.MeshRoute(a, weight), deps)
			}
			if got, want := split(30).String(), "primary=70(v1) canary=30(v2)"; got != want {
				t.Errorf("split at 30 = %q, want %q", got, want)
			}
			zero := split(0)
			for _, h := range []http.Header{{"X-Canary": {"always"}}, {"Cookie": {"a=b; tester=yes"}}} {
				if target, ok := zero.PickFor(h, 0.01); !ok || target.Subset != SubsetCanary || target.Version() != "v2" {
					t.Errorf("a tester's request %v at weight 0 went to %+v (%v), want the v2 canary", h, target, ok)
				}
			}
			for _, h := range []http.Header{nil, {"X-Canary": {"never"}}, {"Cookie": {"tester=no"}}} {
				if target, _ := zero.PickFor(h, 0.99); target.Subset != SubsetPrimary {
					t.Errorf("request %v at weight 0 went to %s, want the primary", h, target.Subset)
				}
			}
			wantService := "" // the app's own Service
			if provider == v1.TrafficGatewayAPI {
				wantService = app + "-primary"
			}
			if s := zero.Targets[0].Service; s != wantService {
				t.Errorf("primary target's Service = %q, want %q", s, wantService)
			}
		})
	}
}

// TestTesterRequestsReachTheCanaryAtWeightZero: the --tester-ratio share
// of requests carries the tester's header and lands on the canary, the
// rest on the primary.
func TestTesterRequestsReachTheCanaryAtWeightZero(t *testing.T) {
	deps := deployments(
		deployment(app, "atzedevries/go-status-code-server:v1", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v2", 1),
	)
	s := BuildHTTPRouteSplit(app, ns, gatewayapi.MeshRoute(operatorApp(v1.TrafficGatewayAPI), 0), deps)
	tr := NewTraffic(20, 0, NewResponder(nil), NewMetrics(), 3)
	tr.TesterRatio, tr.TesterHeader = 0.1, http.Header{"X-Canary": {"always"}}
	const n = 10000
	got, _ := countBySubset(tr, s, n)
	if share := float64(got[SubsetCanary]) / n; math.Abs(share-0.1) > 0.02 {
		t.Errorf("canary share with 10%% testers at weight 0: %v", share)
	}
}

// TestObserverFollowsTheLiveHTTPRoute: without a VirtualService the
// observer reads the app's HTTPRoute from a real API server with Gateway
// API's CRDs, and follows its weights.
func TestObserverFollowsTheLiveHTTPRoute(t *testing.T) {
	env := testenv.StartT(t)
	ctx := t.Context()
	c := env.Client
	namespace := env.NewNamespace(t)
	for _, d := range []struct{ name, image string }{{app, "atzedevries/go-status-code-server:v1"}, {app + "-canary", "atzedevries/go-status-code-server:v3"}} {
		dep := deployment(d.name, d.image, 0)
		dep.Namespace = namespace
		dep.Spec.Selector = newSelector(d.name)
		dep.Spec.Template.Labels = dep.Spec.Selector.MatchLabels
		if err := c.Create(ctx, dep); err != nil {
			t.Fatal(err)
		}
		dep.Status.Replicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = 1, 1, 1
		if err := c.Status().Update(ctx, dep); err != nil {
			t.Fatal(err)
		}
	}
	a := operatorApp(v1.TrafficGatewayAPI)
	a.Namespace = namespace
	route := gatewayapi.MeshRoute(a, 20)
	if err := c.Create(ctx, route); err != nil {
		t.Fatalf("creating HTTPRoute: %v", err)
	}
	observer := NewObserver(c, namespace, []string{app})
	observe := func(want string) {
		t.Helper()
		if err := observer.Observe(ctx); err != nil {
			t.Fatal(err)
		}
		if got := observer.Splits()[0].String(); got != want {
			t.Fatalf("split = %q, want %q", got, want)
		}
	}
	observe("primary=80(v1) canary=20(v3)")

	live := &gatewayv1.HTTPRoute{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: app}, live); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(live.DeepCopy())
	live.Spec.Rules = gatewayapi.MeshRoute(a, 0).Spec.Rules
	if err := c.Patch(ctx, live, patch); err != nil {
		t.Fatal(err)
	}
	observe("primary=100(v1) canary=0(v3)")
	if n := len(observer.Splits()[0].Matches); n != 2 {
		t.Errorf("%d match routes, want the 2 of canaryMatch", n)
	}
}

func newSelector(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
}
