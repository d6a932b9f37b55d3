package traffic_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	istionetworking "istio.io/api/networking/v1"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/testenv"
	"github.com/atzedevries/canaryop/internal/traffic"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// A fuzz worker only runs the fuzz target, which is pure; starting an
	// API server in each worker makes `go test -fuzz` hang.
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	testenv.Main(m, &env)
}

func newApp(t *testing.T, ns, name string) *v1.CanaryApp { return env.NewApp(t, ns, name) }

func get(t *testing.T, ns, name string) (*istionetworkingv1.DestinationRule, *istionetworkingv1.VirtualService) {
	t.Helper()
	key := types.NamespacedName{Namespace: ns, Name: name}
	dr := &istionetworkingv1.DestinationRule{}
	if err := env.Client.Get(t.Context(), key, dr); err != nil {
		t.Fatalf("reading DestinationRule: %v", err)
	}
	vs := &istionetworkingv1.VirtualService{}
	if err := env.Client.Get(t.Context(), key, vs); err != nil {
		t.Fatalf("reading VirtualService: %v", err)
	}
	return dr, vs
}

func wantVirtualServiceSpec(primary, canary int32) *istionetworking.VirtualService {
	dest := func(subset string, w int32) *istionetworking.HTTPRouteDestination {
		return &istionetworking.HTTPRouteDestination{
			Destination: &istionetworking.Destination{Host: "shop", Subset: subset, Port: &istionetworking.PortSelector{Number: 8080}},
			Weight:      w,
		}
	}
	return &istionetworking.VirtualService{
		Hosts: []string{"shop"},
		Http: []*istionetworking.HTTPRoute{{
			Name:  "shop",
			Route: []*istionetworking.HTTPRouteDestination{dest("primary", primary), dest("canary", canary)},
		}},
	}
}

func TestRouteWeights(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	router := traffic.NewIstio(env.Client)

	for _, w := range []int32{0, 30, 100, 0} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			if err := router.Route(t.Context(), app, w); err != nil {
				t.Fatal(err)
			}
			dr, vs := get(t, ns, "shop")

			if diff := cmp.Diff(wantVirtualServiceSpec(100-w, w), &vs.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("VirtualService spec (-want +got):\n%s", diff)
			}
			if got, ok := traffic.CanaryWeight(&vs.Spec); !ok || got != w {
				t.Errorf("CanaryWeight() = %d, %v, want %d", got, ok, w)
			}
			wantDR := &istionetworking.DestinationRule{
				Host: "shop",
				Subsets: []*istionetworking.Subset{
					{Name: "primary", Labels: map[string]string{"canary.atze.io/track": "primary"}},
					{Name: "canary", Labels: map[string]string{"canary.atze.io/track": "canary"}},
				},
			}
			if diff := cmp.Diff(wantDR, &dr.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("DestinationRule spec (-want +got):\n%s", diff)
			}
			wantLabels := map[string]string{
				"app.kubernetes.io/name":       "shop",
				"app.kubernetes.io/managed-by": "canaryop",
				"canary.atze.io/app":           "shop",
			}
			wantRefs := []metav1.OwnerReference{{
				APIVersion: "canary.atze.io/v1", Kind: "CanaryApp", Name: "shop", UID: app.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}
			for _, obj := range []metav1.Object{dr, vs} {
				if diff := cmp.Diff(wantLabels, obj.GetLabels()); diff != "" {
					t.Errorf("labels (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(wantRefs, obj.GetOwnerReferences()); diff != "" {
					t.Errorf("owner references (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestRouteSameWeightChangesNothing(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	router := traffic.NewIstio(env.Client)

	for _, w := range []int32{0, 30, 100} {
		if err := router.Route(t.Context(), app, w); err != nil {
			t.Fatal(err)
		}
		dr1, vs1 := get(t, ns, "shop")
		if err := router.Route(t.Context(), app, w); err != nil {
			t.Fatal(err)
		}
		dr2, vs2 := get(t, ns, "shop")
		if dr1.ResourceVersion != dr2.ResourceVersion {
			t.Errorf("weight %d twice: DestinationRule resourceVersion %s -> %s", w, dr1.ResourceVersion, dr2.ResourceVersion)
		}
		if vs1.ResourceVersion != vs2.ResourceVersion {
			t.Errorf("weight %d twice: VirtualService resourceVersion %s -> %s", w, vs1.ResourceVersion, vs2.ResourceVersion)
		}
	}
}

// countingClient counts the writes that reach the API server.
type countingClient struct {
	client.Client
	applies int
}

func (c *countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.applies++
	return c.Client.Apply(ctx, obj, opts...)
}

func TestRouteSkipsNoOpAppliesButUndoesDrift(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	c := &countingClient{Client: env.Client}
	router := traffic.NewIstio(c)
	if err := router.Route(t.Context(), app, 30); err != nil {
		t.Fatal(err)
	}
	if c.applies != 2 {
		t.Fatalf("first route: %d applies, want 2 (DestinationRule, VirtualService)", c.applies)
	}
	if err := router.Route(t.Context(), app, 30); err != nil {
		t.Fatal(err)
	}
	if c.applies != 2 {
		t.Fatalf("routing the same weight again applied %d more objects, want none", c.applies-2)
	}

	// A person sends all traffic back to the primary by hand: the next
	// route puts the canary's share back.
	_, vs := get(t, ns, "shop")
	vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = 100, 0
	if err := env.Client.Update(t.Context(), vs); err != nil {
		t.Fatal(err)
	}
	if err := router.Route(t.Context(), app, 30); err != nil {
		t.Fatal(err)
	}
	if c.applies != 3 {
		t.Fatalf("after drift: %d applies, want 3 (the VirtualService only)", c.applies)
	}
	if _, vs := get(t, ns, "shop"); !proto.Equal(&vs.Spec, wantVirtualServiceSpec(70, 30)) {
		t.Fatalf("drift not undone: %v", &vs.Spec)
	}
}

func TestRouteRejectsBadWeights(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	router := traffic.NewIstio(env.Client)

	for _, w := range []int32{-1, 101} {
		if err := router.Route(t.Context(), app, w); err == nil {
			t.Errorf("Route(%d): want an error", w)
		}
	}
	err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "shop"}, &istionetworkingv1.VirtualService{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a rejected weight wrote a VirtualService: get error = %v", err)
	}
}

func TestRouteNeverAdopts(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()

	mine := &istionetworkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}}
	mine.Spec.Hosts = []string{"shop.example.com"}
	if err := env.Client.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	before := mine.ResourceVersion

	err := traffic.NewIstio(env.Client).Route(ctx, app, 30)
	var foreign *apply.ForeignObjectError
	if !errors.As(err, &foreign) {
		t.Fatalf("Route() error = %v, want a *ForeignObjectError", err)
	}
	if foreign.GVK.Kind != "VirtualService" || foreign.Name != "shop" {
		t.Errorf("error names %s %s, want VirtualService shop", foreign.GVK.Kind, foreign.Name)
	}
	_, vs := get(t, ns, "shop")
	if vs.ResourceVersion != before || len(vs.Spec.GetHttp()) != 0 {
		t.Errorf("hand-made VirtualService changed: resourceVersion %s -> %s, http %v", before, vs.ResourceVersion, vs.Spec.GetHttp())
	}
}

func TestCanaryWeight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   *istionetworking.VirtualService
		want   int32
		wantOK bool
	}{
		{"built at 30", traffic.VirtualService(&v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, 30).Spec, 30, true},
		{"built at 0", traffic.VirtualService(&v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, 0).Spec, 0, true},
		{"no canary subset", &istionetworking.VirtualService{Http: []*istionetworking.HTTPRoute{{
			Route: []*istionetworking.HTTPRouteDestination{{Destination: &istionetworking.Destination{Host: "shop"}, Weight: 100}},
		}}}, 0, false},
		{"empty", &istionetworking.VirtualService{}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := traffic.CanaryWeight(tc.spec)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("CanaryWeight() = %d, %v, want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// BenchmarkRouteUnchanged measures the steady state of a reconcile: the
// weight is already in place, so Route only reads and re-applies.
func BenchmarkRouteUnchanged(b *testing.B) {
	ctx := b.Context()
	ns := env.NewNamespace(b)
	app := &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: v1.CanaryAppSpec{
			Image: "registry.example.com/shop:v1", ImageListenPort: 8080, Replicas: 2, TestReplicas: 1,
			PrometheusQuery: "up == 0", PrometheusURL: "http://prometheus:9090",
		},
	}
	if err := env.Client.Create(ctx, app); err != nil {
		b.Fatal(err)
	}
	router := traffic.NewIstio(env.Client)
	if err := router.Route(ctx, app, 30); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := router.Route(ctx, app, 30); err != nil {
			b.Fatal(err)
		}
	}
}

const testPolicy = "istio-system/public-gateway=*.{namespace}.example.com,shop.example.com@team-*,prod;" +
	"canaryapp-gateway=*@default;" +
	"istio-system/internal@*"

func mustPolicy(t testing.TB, value string) *routepolicy.Policy {
	t.Helper()
	p, err := routepolicy.Parse(value)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func specApp(ns string, gateways, hosts []string) *v1.CanaryApp {
	return &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec:       v1.CanaryAppSpec{ImageListenPort: 8080, Gateways: gateways, Hosts: hosts},
	}
}

// TestVirtualServices: the mesh VirtualService holds the own host only,
// whatever the spec asks; the gateway one holds what the policy allows and
// never the mesh.
func TestVirtualServices(t *testing.T) {
	policy := mustPolicy(t, testPolicy)
	for _, tc := range []struct {
		name         string
		policy       *routepolicy.Policy
		app          *v1.CanaryApp
		wantGateways []string // nil: no gateway VirtualService
		wantHosts    []string
		wantRefused  int
	}{
		{name: "no spec", policy: policy, app: specApp("team-a", nil, nil)},
		{
			name:        "default policy, the H3 exploit",
			app:         specApp("evil", []string{"istio-system/public-gateway"}, []string{"sso.example.com", "payments.team-b.svc.cluster.local"}),
			wantRefused: 3,
		},
		{
			name:        "default policy, the README's demo patch (L5: * on the mesh)",
			app:         specApp("default", []string{"canaryapp-gateway"}, []string{"*"}),
			wantRefused: 2,
		},
		{
			name:         "the demo patch, allowed",
			policy:       policy,
			app:          specApp("default", []string{"canaryapp-gateway"}, []string{"*"}),
			wantGateways: []string{"default/canaryapp-gateway"},
			wantHosts:    []string{"shop", "*"},
		},
		{
			name:         "public gateway for a team, one host refused",
			policy:       policy,
			app:          specApp("team-a", []string{"istio-system/public-gateway", "mesh"}, []string{"www.team-a.example.com", "sso.example.com", "shop.team-a.svc.cluster.local"}),
			wantGateways: []string{"istio-system/public-gateway"},
			wantHosts:    []string{"shop", "www.team-a.example.com"},
			wantRefused:  1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mesh := traffic.VirtualService(tc.app, 10)
			if len(mesh.Spec.Gateways) != 0 || !slices.Equal(mesh.Spec.Hosts, []string{"shop"}) || len(mesh.Spec.ExportTo) != 0 {
				t.Errorf("mesh VirtualService: gateways %v, hosts %v, exportTo %v; want the mesh only, host shop, exported everywhere",
					mesh.Spec.Gateways, mesh.Spec.Hosts, mesh.Spec.ExportTo)
			}
			d := tc.policy.Decide(tc.app.Namespace, "shop", tc.app.Spec.Gateways, tc.app.Spec.Hosts)
			if len(d.Refused) != tc.wantRefused {
				t.Errorf("refused %v, want %d", d.Refused, tc.wantRefused)
			}
			gw := traffic.GatewayVirtualService(tc.app, 10, d)
			if tc.wantGateways == nil {
				if gw != nil {
					t.Fatalf("gateway VirtualService %v, want none", gw.Spec)
				}
				return
			}
			if gw == nil {
				t.Fatal("no gateway VirtualService")
			}
			if *gw.Name != "shop-gateways" || *gw.Namespace != tc.app.Namespace {
				t.Errorf("gateway VirtualService %s/%s", *gw.Namespace, *gw.Name)
			}
			if !slices.Equal(gw.Spec.Gateways, tc.wantGateways) || !slices.Equal(gw.Spec.Hosts, tc.wantHosts) {
				t.Errorf("gateways %v, hosts %v; want %v, %v", gw.Spec.Gateways, gw.Spec.Hosts, tc.wantGateways, tc.wantHosts)
			}
			if !proto.Equal(&istionetworking.VirtualService{Http: gw.Spec.Http}, &istionetworking.VirtualService{Http: mesh.Spec.Http}) {
				t.Errorf("gateway route %v differs from the mesh route %v", gw.Spec.Http, mesh.Spec.Http)
			}
		})
	}
}

var validHostRE = regexp.MustCompile(`^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$`)

// allowedOn is testPolicy written out by hand: whether an app in ns may
// bind gateway at all, and whether host may go with it.
func allowedOn(ns, gateway, host string) (gatewayOK, hostOK bool) {
	switch gateway {
	case "istio-system/public-gateway":
		return strings.HasPrefix(ns, "team-") || ns == "prod",
			host == "shop.example.com" || strings.HasSuffix(host, "."+ns+".example.com")
	case "default/canaryapp-gateway":
		return ns == "default", true
	case "istio-system/internal":
		return true, false
	}
	return false, false
}

// FuzzVirtualServices: for any namespace and spec, the VirtualServices
// built under testPolicy hold no host or gateway outside what testPolicy
// allows, never bind anything but the own host to the mesh, and never
// hold a host or gateway the spec did not ask for.
func FuzzVirtualServices(f *testing.F) {
	f.Add("team-a", "istio-system/public-gateway,mesh", "www.team-a.example.com,*.team-a.example.com,shop.example.com,*")
	f.Add("default", "canaryapp-gateway,public-gateway.istio-system,./canaryapp-gateway", "*,shop")
	f.Add("evil", "istio-system/public-gateway,istio-system/internal", "sso.example.com,payments.team-b.svc.cluster.local,*.example.com")
	f.Add("team-b", "istio-system/public-gateway.istio-system,team-b/../internal", "*.team-a.example.com,x.team-b.example.com")
	policy := mustPolicy(f, testPolicy)
	f.Fuzz(func(t *testing.T, ns, gateways, hosts string) {
		app := specApp(ns, strings.Split(gateways, ","), strings.Split(hosts, ","))
		mesh := traffic.VirtualService(app, 30)
		if len(mesh.Spec.Gateways) != 0 || !slices.Equal(mesh.Spec.Hosts, []string{"shop"}) {
			t.Fatalf("mesh VirtualService: gateways %v, hosts %v", mesh.Spec.Gateways, mesh.Spec.Hosts)
		}
		gw := traffic.GatewayVirtualService(app, 30, policy.Decide(ns, "shop", app.Spec.Gateways, app.Spec.Hosts))
		if gw == nil {
			return
		}
		if len(gw.Spec.Gateways) == 0 {
			t.Fatal("gateway VirtualService without gateways: Istio would bind it to the mesh")
		}
		for _, g := range gw.Spec.Gateways {
			if ok, _ := allowedOn(ns, g, ""); !ok || g == "mesh" {
				t.Fatalf("gateway %q emitted for namespace %q", g, ns)
			}
		}
		if len(gw.Spec.Hosts) == 0 || gw.Spec.Hosts[0] != "shop" {
			t.Fatalf("hosts %v: want the own host first", gw.Spec.Hosts)
		}
		for _, h := range gw.Spec.Hosts[1:] {
			if !validHostRE.MatchString(h) || !slices.Contains(app.Spec.Hosts, h) {
				t.Fatalf("host %q emitted: invalid or not asked for", h)
			}
			for _, g := range gw.Spec.Gateways {
				if _, ok := allowedOn(ns, g, h); !ok {
					t.Fatalf("host %q emitted on gateway %q for namespace %q", h, g, ns)
				}
			}
		}
	})
}

func TestRouteNotAllowed(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	app.Spec.Gateways = []string{"istio-system/public-gateway"}
	app.Spec.Hosts = []string{"payments.team-b.svc.cluster.local"}
	if err := env.Client.Update(t.Context(), app); err != nil {
		t.Fatal(err)
	}

	err := traffic.NewIstio(env.Client).Route(t.Context(), app, 30)
	rna, ok := errors.AsType[*traffic.RouteNotAllowedError](err)
	if !ok {
		t.Fatalf("Route() error = %v, want a *RouteNotAllowedError", err)
	}
	if rna.Reason() != v1.ReasonRouteNotAllowed || rna.Namespace != ns || rna.Name != "shop" || len(rna.Refused) != 2 {
		t.Errorf("error %+v", rna)
	}
	for _, want := range []string{`gateway "istio-system/public-gateway"`, `host "payments.team-b.svc.cluster.local"`, "--allowed-gateways"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %s", err, want)
		}
	}
	// The safe part is applied before the error: the own host's weights.
	_, vs := get(t, ns, "shop")
	if diff := cmp.Diff(wantVirtualServiceSpec(70, 30), &vs.Spec, protocmp.Transform()); diff != "" {
		t.Errorf("VirtualService spec (-want +got):\n%s", diff)
	}
	err = env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "shop-gateways"}, &istionetworkingv1.VirtualService{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("gateway VirtualService: get error = %v, want NotFound", err)
	}
}

func TestRouteThroughAllowedGateway(t *testing.T) {
	ns := env.NewNamespace(t)
	ctx := t.Context()
	app := newApp(t, ns, "shop")
	app.Spec.Gateways = []string{"ingress", "istio-system/internal"}
	app.Spec.Hosts = []string{"shop.example.com"}
	if err := env.Client.Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	policy := mustPolicy(t, "ingress=*.example.com@"+ns+";istio-system/internal=shop.example.com@*")
	router := traffic.NewIstio(env.Client, traffic.WithRoutePolicy(policy), traffic.WithAPIReader(env.Client))

	if err := router.Route(ctx, app, 30); err != nil {
		t.Fatal(err)
	}
	_, mesh := get(t, ns, "shop")
	if diff := cmp.Diff(wantVirtualServiceSpec(70, 30), &mesh.Spec, protocmp.Transform()); diff != "" {
		t.Errorf("mesh VirtualService spec (-want +got):\n%s", diff)
	}
	gw := &istionetworkingv1.VirtualService{}
	key := types.NamespacedName{Namespace: ns, Name: "shop-gateways"}
	if err := env.Client.Get(ctx, key, gw); err != nil {
		t.Fatal(err)
	}
	want := wantVirtualServiceSpec(70, 30)
	want.Hosts = []string{"shop", "shop.example.com"}
	want.Gateways = []string{ns + "/ingress", "istio-system/internal"}
	if diff := cmp.Diff(want, &gw.Spec, protocmp.Transform()); diff != "" {
		t.Errorf("gateway VirtualService spec (-want +got):\n%s", diff)
	}
	if !metav1.IsControlledBy(gw, app) {
		t.Errorf("gateway VirtualService owners %v", gw.OwnerReferences)
	}

	// The spec names no gateway any more: the gateway VirtualService goes.
	app.Spec.Gateways, app.Spec.Hosts = nil, nil
	if err := router.Route(ctx, app, 40); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, &istionetworkingv1.VirtualService{}); !apierrors.IsNotFound(err) {
		t.Errorf("after the gateways were removed: get error = %v, want NotFound", err)
	}

	// A VirtualService of that name someone else made is left alone and
	// does not stop the routing.
	other := &istionetworkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "shop-gateways", Namespace: ns}}
	other.Spec.Hosts = []string{"other.example.com"}
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := router.Route(ctx, app, 50); err != nil {
		t.Fatalf("Route() with a foreign VirtualService it does not need: %v", err)
	}
	if err := env.Client.Get(ctx, key, other); err != nil {
		t.Errorf("foreign VirtualService: %v", err)
	}
}

func TestRouteRefusesAnInvalidServiceName(t *testing.T) {
	app := specApp("team-a", nil, nil)
	app.Name = "payments.team-b.svc.cluster.local"
	app.UID = "x"
	// No API server needed: nothing may be written, not even attempted.
	if err := traffic.NewIstio(nil).Route(t.Context(), app, 30); err == nil {
		t.Fatal("Route() with a dotted name: want an error")
	}
}

// TestRouteUpgradesTheOldVirtualService: before the route policy, the one
// VirtualService held spec.hosts and spec.gateways plus the mesh. Routing
// now takes them off it, so nothing but the own host stays on the mesh.
func TestRouteUpgradesTheOldVirtualService(t *testing.T) {
	ns := env.NewNamespace(t)
	ctx := t.Context()
	app := newApp(t, ns, "shop")
	old := traffic.VirtualService(app, 30)
	old.Spec.Gateways = []string{"istio-system/ingress", "mesh"}
	old.Spec.Hosts = []string{"shop", "payments.team-b.svc.cluster.local"}
	if err := apply.Apply(ctx, env.Client, app, old); err != nil {
		t.Fatal(err)
	}

	if err := traffic.NewIstio(env.Client).Route(ctx, app, 30); err != nil {
		t.Fatal(err)
	}
	_, vs := get(t, ns, "shop")
	if diff := cmp.Diff(wantVirtualServiceSpec(70, 30), &vs.Spec, protocmp.Transform()); diff != "" {
		t.Errorf("VirtualService spec (-want +got):\n%s", diff)
	}
}
