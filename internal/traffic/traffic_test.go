package traffic_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	"github.com/atzedevries/canaryop/internal/testenv"
	"github.com/atzedevries/canaryop/internal/traffic"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

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

func TestVirtualServiceGatewaysAndHosts(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "web"}, Spec: v1.CanaryAppSpec{ImageListenPort: 8080}}
	if vs := traffic.VirtualService(app, 10); len(vs.Spec.Gateways) != 0 || !slices.Equal(vs.Spec.Hosts, []string{"shop"}) {
		t.Fatalf("without gateways: gateways %v, hosts %v; want Istio's default mesh only and the Service host", vs.Spec.Gateways, vs.Spec.Hosts)
	}
	app.Spec.Gateways = []string{"istio-system/ingress"}
	app.Spec.Hosts = []string{"*"}
	vs := traffic.VirtualService(app, 10)
	if !slices.Equal(vs.Spec.Gateways, []string{"istio-system/ingress", "mesh"}) {
		t.Errorf("gateways %v: the mesh must stay routed", vs.Spec.Gateways)
	}
	if !slices.Equal(vs.Spec.Hosts, []string{"shop", "*"}) {
		t.Errorf("hosts %v", vs.Spec.Hosts)
	}
	if len(app.Spec.Gateways) != 1 {
		t.Errorf("the builder changed the spec: %v", app.Spec.Gateways)
	}
}
