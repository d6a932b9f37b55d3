package gatewayapi

import (
	"slices"
	"strings"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/routepolicy"
)

func appWith(ns string, hosts []string, refs ...v1.ParentRef) *v1.CanaryApp {
	a := &v1.CanaryApp{}
	a.Name, a.Namespace = "shop", ns
	a.Spec.ImageListenPort = 8080
	a.Spec.Hosts = hosts
	a.Spec.Traffic = &v1.TrafficSpec{Provider: v1.TrafficGatewayAPI, GatewayAPI: &v1.GatewayAPITraffic{ParentRefs: refs}}
	return a
}

func parentKeys(ps []gatewayv1.ParentReference) []string {
	var out []string
	for _, p := range ps {
		k := string(*p.Namespace) + "/" + string(p.Name)
		if p.SectionName != nil {
			k += "#" + string(*p.SectionName)
		}
		out = append(out, k)
	}
	return out
}

// TestDecide: Gateways are parents only as --allowed-gateways allows them
// for the app's namespace; a Service parent only when it is the app's own;
// hosts follow the Istio rules and become hostnames.
func TestDecide(t *testing.T) {
	policy, err := routepolicy.Parse("infra/public=*.{namespace}.example.com@team-*;internal@*")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		policy      *routepolicy.Policy
		app         *v1.CanaryApp
		parents     []string
		hostnames   []string
		refusedSubs []string
	}{
		{"no parentRefs: mesh only", policy, appWith("team-a", nil), nil, []string{"shop", "shop.team-a.svc", "shop.team-a.svc.cluster.local"}, nil},
		{"allowed gateway with listener", policy, appWith("team-a", []string{"web.team-a.example.com"},
			v1.ParentRef{Namespace: "infra", Name: "public", SectionName: "https"}),
			[]string{"infra/public#https"}, []string{"web.team-a.example.com"}, nil},
		{"gateway of the own namespace by a rule without namespace", policy, appWith("team-b", nil, v1.ParentRef{Name: "internal"}),
			[]string{"team-b/internal"}, []string{"shop", "shop.team-b.svc", "shop.team-b.svc.cluster.local"}, nil},
		{"gateway not allowed for the namespace", policy, appWith("other", nil, v1.ParentRef{Namespace: "infra", Name: "public"}),
			nil, []string{"shop", "shop.other.svc", "shop.other.svc.cluster.local"}, []string{"infra/public"}},
		{"no policy allows no gateway", nil, appWith("team-a", nil, v1.ParentRef{Namespace: "infra", Name: "public"}),
			nil, []string{"shop", "shop.team-a.svc", "shop.team-a.svc.cluster.local"}, []string{"infra/public"}},
		{"another team's host", policy, appWith("team-a", []string{"web.team-b.example.com"}, v1.ParentRef{Namespace: "infra", Name: "public"}),
			[]string{"infra/public"}, []string{"shop", "shop.team-a.svc", "shop.team-a.svc.cluster.local"}, []string{"web.team-b.example.com"}},
		{"own Service parent needs no rule", nil, appWith("team-a", nil, v1.ParentRef{Kind: "Service", Name: "shop"}),
			nil, []string{"shop", "shop.team-a.svc", "shop.team-a.svc.cluster.local"}, nil},
		{"another Service is never a parent", policy, appWith("team-a", nil, v1.ParentRef{Kind: "Service", Name: "payments"}),
			nil, []string{"shop", "shop.team-a.svc", "shop.team-a.svc.cluster.local"}, []string{"Service/payments"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.policy, tc.app)
			if got := parentKeys(d.Parents); !slices.Equal(got, tc.parents) {
				t.Errorf("parents %v, want %v", got, tc.parents)
			}
			var hostnames []string
			for _, h := range d.Hostnames {
				hostnames = append(hostnames, string(h))
			}
			if !slices.Equal(hostnames, tc.hostnames) {
				t.Errorf("hostnames %v, want %v", hostnames, tc.hostnames)
			}
			if len(d.Refused) != len(tc.refusedSubs) {
				t.Fatalf("refused %v, want %d", d.Refused, len(tc.refusedSubs))
			}
			for i, sub := range tc.refusedSubs {
				if !strings.Contains(d.Refused[i].String(), sub) {
					t.Errorf("refusal %q does not name %s", d.Refused[i], sub)
				}
			}
		})
	}
}

// TestStarHostHasNoHostnames: an allowed "*" host leaves the Gateway
// route's hostnames out, so that it takes every hostname of the listener.
func TestStarHostHasNoHostnames(t *testing.T) {
	policy, err := routepolicy.Parse("infra/public=*@team-a")
	if err != nil {
		t.Fatal(err)
	}
	d := Decide(policy, appWith("team-a", []string{"*"}, v1.ParentRef{Namespace: "infra", Name: "public"}))
	if len(d.Parents) != 1 || d.Hostnames != nil || len(d.Refused) != 0 {
		t.Errorf("decision %+v, want one parent, no hostnames, nothing refused", d)
	}
	if GatewayRoute(appWith("team-a", nil), 10, Decision{}) != nil {
		t.Error("a Gateway route without parents")
	}
}

// TestRulesWeightsAndMirror: the weighted rule is last, mirroring only
// while a canary runs at weight 0.
func TestRulesWeightsAndMirror(t *testing.T) {
	a := appWith("team-a", nil)
	a.Spec.Traffic.MirrorPercent = new(int32)
	*a.Spec.Traffic.MirrorPercent = 30
	for _, tc := range []struct {
		weight  int32
		canary  string
		mirrors bool
	}{{0, "", false}, {0, "shop:v2", true}, {10, "shop:v2", false}} {
		a.Status.CanaryImage = tc.canary
		route := MeshRoute(a, tc.weight)
		if w, ok := CanaryWeight(a, route); !ok || w != tc.weight {
			t.Errorf("weight %d: read back %d (%v)", tc.weight, w, ok)
		}
		rules := route.Spec.Rules
		if got := len(rules[len(rules)-1].Filters) == 1; got != tc.mirrors {
			t.Errorf("weight %d canary %q: mirrors %v, want %v", tc.weight, tc.canary, got, tc.mirrors)
		}
	}
}
