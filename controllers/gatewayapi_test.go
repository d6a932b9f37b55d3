package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/traffic/gatewayapi"
	"github.com/atzedevries/canaryop/internal/traffic/routers"
)

// onGatewayAPI makes a sample app use the gatewayapi router.
func onGatewayAPI(a *v1.CanaryApp) {
	a.Spec.Traffic = &v1.TrafficSpec{Provider: v1.TrafficGatewayAPI}
}

// httpRoute reads the HTTPRoute name in ns.
func httpRoute(g Gomega, ns, name string) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, r)).To(Succeed())
	return r
}

// routeWeight reads the canary weight from the app's live mesh HTTPRoute.
func routeWeight(g Gomega, app *v1.CanaryApp) int32 {
	w, ok := gatewayapi.CanaryWeight(app, httpRoute(g, app.Namespace, gatewayapi.RouteName(app)))
	g.Expect(ok).To(BeTrue(), "the HTTPRoute routes to the canary Service")
	return w
}

// withRoutes runs the reconciler with every router and policy.
func withRoutes(policy *routepolicy.Policy, providers ...traffic.Provider) func(*controllers.CanaryAppReconciler) {
	if providers == nil {
		providers = routers.All()
	}
	return func(r *controllers.CanaryAppReconciler) {
		r.Router = traffic.NewRouters(traffic.Deps{Client: r.Client, APIReader: r.APIReader, Policy: policy}, providers)
	}
}

// TestGatewayAPIPromotion: on the gatewayapi router the weights move on the
// HTTPRoute's backendRefs step by step to the promotion, then back to 0;
// the track Services select one track each; no Istio object is written.
func TestGatewayAPIPromotion(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, onGatewayAPI)

	route := httpRoute(g, ns, appName)
	g.Expect(route.Spec.ParentRefs).To(HaveLen(1))
	g.Expect(string(route.Spec.ParentRefs[0].Name)).To(Equal(appName))
	g.Expect(string(*route.Spec.ParentRefs[0].Kind)).To(Equal("Service"))
	g.Expect(metav1.IsControlledBy(route, app)).To(BeTrue())
	g.Expect(routeWeight(g, app)).To(Equal(int32(0)))
	for track, name := range map[string]string{"primary": appName + "-primary", "canary": appName + "-canary"} {
		svc := &corev1.Service{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc)).To(Succeed())
		g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"canary.atze.io/app": appName, "canary.atze.io/track": track}))
		g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(8088)))
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: appName}, &istionetworking.VirtualService{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no VirtualService on the gatewayapi router: %v", err)

	setImage(g, app, image("v2"))
	seen := map[int32]bool{}
	g.Eventually(func(g Gomega) *v1.CanaryApp {
		seen[routeWeight(g, app)] = true
		return get(g, app)
	}, timeout, 50*time.Millisecond).Should(And(
		WithTransform(func(a *v1.CanaryApp) string { return a.Status.StableImage }, Equal(image("v2"))),
		haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable),
	))
	g.Expect(seen).To(And(HaveKey(int32(25)), HaveKey(int32(50))), "the canary took traffic in steps")
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v2")))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
	g.Expect(routeWeight(g, app)).To(Equal(int32(0)))
	backends := httpRoute(g, ns, appName).Spec.Rules[0].BackendRefs
	g.Expect(string(backends[0].Name)).To(Equal(appName + "-primary"))
	g.Expect(*backends[0].Weight).To(Equal(int32(100)))
}

// TestGatewayAPIRollback: a failing check on the gatewayapi router sends
// every request back to the primary Service and removes the canary.
func TestGatewayAPIRollback(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, onGatewayAPI)

	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return routeWeight(g, app) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRolledBack),
	))
	g.Expect(get(g, app).Status.StableImage).To(Equal(image("v1")))
	g.Expect(routeWeight(g, app)).To(Equal(int32(0)))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).Should(BeNil())
}

// TestGatewayAPIForeignRouteNotAdopted: an HTTPRoute of the app's name that
// someone else made stalls the app and stays as it was.
func TestGatewayAPIForeignRouteNotAdopted(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns := env.NewNamespace(t)
	kubelet(t, ns, nil)
	foreign := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns}}
	foreign.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "someone-elses-gateway"}}
	foreign.Spec.Rules = []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: "elsewhere", Port: ptr(gatewayv1.PortNumber(80))}}}}}}
	g.Expect(env.Client.Create(context.Background(), foreign)).To(Succeed())
	rv := foreign.ResourceVersion

	app := sample(ns, prom.URL)
	onGatewayAPI(app)
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonForeignObject))
	g.Expect(condition(get(g, app), v1.ConditionStalled).Message).To(ContainSubstring("HTTPRoute"))
	g.Consistently(func(g Gomega) string { return httpRoute(g, ns, appName).ResourceVersion }, 2*time.Second, poll).Should(Equal(rv))
	g.Expect(httpRoute(g, ns, appName).OwnerReferences).To(BeEmpty())
}

// TestGatewayAPIParentRefsRefused: only the Gateways --allowed-gateways
// allows for the namespace are parents of the Gateway HTTPRoute; another
// team's Service and an unlisted Gateway are refused with RouteNotAllowed,
// while the app's own Service (GAMMA) always routes and the canary still
// shifts traffic.
func TestGatewayAPIParentRefsRefused(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	ns := env.NewNamespace(t)
	policy, err := routepolicy.Parse("infra/public=*.{namespace}.example.com@" + ns)
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, nil, withRoutes(policy))
	_, app := stableAppIn(t, g, ns, prom.URL, func(a *v1.CanaryApp) {
		onGatewayAPI(a)
		a.Spec.Traffic.GatewayAPI = &v1.GatewayAPITraffic{ParentRefs: []v1.ParentRef{
			{Namespace: "infra", Name: "public", SectionName: "https"},
			{Namespace: "infra", Name: "admin"},
			{Kind: "Service", Group: ptr(""), Name: "payments"},
			{Kind: "Service", Name: appName},
		}}
		a.Spec.Hosts = []string{"web." + ns + ".example.com", "sso.example.com"}
	})
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRouteNotAllowed))
	msg := condition(get(g, app), v1.ConditionStalled).Message
	g.Expect(msg).To(And(ContainSubstring("infra/admin"), ContainSubstring("payments"), ContainSubstring("sso.example.com")))

	mesh := httpRoute(g, ns, appName)
	g.Expect(mesh.Spec.ParentRefs).To(HaveLen(1))
	g.Expect(string(mesh.Spec.ParentRefs[0].Name)).To(Equal(appName))
	g.Expect(mesh.Spec.Hostnames).To(BeEmpty())
	gw := httpRoute(g, ns, appName+"-gateways")
	g.Expect(gw.Spec.ParentRefs).To(HaveLen(1))
	p := gw.Spec.ParentRefs[0]
	g.Expect([]string{string(*p.Namespace), string(p.Name), string(*p.SectionName), string(*p.Kind)}).To(Equal([]string{"infra", "public", "https", "Gateway"}))
	g.Expect(gw.Spec.Hostnames).To(Equal([]gatewayv1.Hostname{gatewayv1.Hostname("web." + ns + ".example.com")}))

	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) int32 { return routeWeight(g, app) }, timeout, 50*time.Millisecond).Should(BeNumerically(">", 0))
	// The Gateway route is applied right after the mesh one.
	g.Eventually(func(g Gomega) int32 {
		w, ok := gatewayapi.CanaryWeight(app, httpRoute(g, ns, appName+"-gateways"))
		g.Expect(ok).To(BeTrue())
		return w
	}, timeout, 50*time.Millisecond).Should(BeNumerically(">", 0), "the Gateway route moves with the mesh one")
}

// The cross-tenant attack on the gatewayapi router (review finding H3): a
// tenant in another namespace names the shared Gateway the admin allows
// only for team namespaces, and team B's Service as a parent. Neither is
// attached: the app's traffic stays on its own Service (GAMMA), and the
// app stalls saying why.
func TestGatewayAPIOtherNamespaceCannotAttach(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	teamB := env.NewNamespace(t)
	evil := env.NewNamespace(t)
	policy, err := routepolicy.Parse("infra/public=*.{namespace}.example.com@" + teamB)
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, nil, withRoutes(policy))
	_, app := stableAppIn(t, g, evil, prom.URL, func(a *v1.CanaryApp) {
		onGatewayAPI(a)
		a.Spec.Traffic.GatewayAPI = &v1.GatewayAPITraffic{ParentRefs: []v1.ParentRef{
			{Namespace: "infra", Name: "public"},
			{Kind: "Service", Name: "payments"},
		}}
		a.Spec.Hosts = []string{"shop." + teamB + ".example.com"}
	})
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRouteNotAllowed))
	mesh := httpRoute(g, evil, appName)
	g.Expect(mesh.Spec.ParentRefs).To(HaveLen(1))
	g.Expect(string(mesh.Spec.ParentRefs[0].Name)).To(Equal(appName), "only the app's own Service")
	g.Expect(mesh.Spec.Hostnames).To(BeEmpty())
	gw := &gatewayv1.HTTPRoute{}
	err = env.Client.Get(context.Background(), client.ObjectKey{Namespace: evil, Name: appName + "-gateways"}, gw)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no route attaches to infra/public from %s (got %v, parents %v)", evil, err, gw.Spec.ParentRefs)
}

// TestCanaryMatchAtWeightZero: on both routers the canaryMatch requests go
// to the canary while it still has weight 0 (its pods are not ready yet),
// and mirrorPercent mirrors to it in that phase; while no canary runs there
// are no match routes.
func TestCanaryMatchAtWeightZero(t *testing.T) {
	for _, provider := range []v1.TrafficProvider{v1.TrafficIstio, v1.TrafficGatewayAPI} {
		t.Run(string(provider), func(t *testing.T) {
			g := NewWithT(t)
			prom := newFakeProm(t)
			startManager(t, nil)
			notCanary := func(d *appsv1.Deployment) bool { return d.Name != canaryName }
			ns, app := stableApp(t, g, prom.URL, notCanary, func(a *v1.CanaryApp) {
				a.Spec.Traffic = &v1.TrafficSpec{Provider: provider, MirrorPercent: ptr(int32(20)), CanaryMatch: []v1.TrafficMatch{
					{Headers: []v1.HeaderMatch{{Name: "X-Canary", Value: "always"}}},
					{Cookie: &v1.CookieMatch{Name: "tester", Value: "yes"}},
				}}
			})
			g.Expect(routeRules(g, provider, app)).To(Equal(1), "no match routes while no canary runs")
			setImage(g, app, image("v2"))
			g.Eventually(func(g Gomega) string { return get(g, app).Status.CanaryImage }, timeout, poll).Should(Equal(image("v2")))
			if provider == v1.TrafficIstio {
				expectIstioMatches(g, ns)
			} else {
				expectHTTPRouteMatches(g, app)
			}
		})
	}
}

// routeRules counts the rules of the app's mesh route on provider.
func routeRules(g Gomega, provider v1.TrafficProvider, app *v1.CanaryApp) int {
	if provider == v1.TrafficGatewayAPI {
		return len(httpRoute(g, app.Namespace, appName).Spec.Rules)
	}
	vs := &istionetworking.VirtualService{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: app.Namespace, Name: appName}, vs)).To(Succeed())
	return len(vs.Spec.Http)
}

func expectIstioMatches(g *WithT, ns string) {
	g.Eventually(func(g Gomega) {
		vs := &istionetworking.VirtualService{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: appName}, vs)).To(Succeed())
		http := vs.Spec.Http
		g.Expect(http).To(HaveLen(3))
		g.Expect(http[0].Match[0].Headers["x-canary"].GetExact()).To(Equal("always"))
		g.Expect(http[1].Match[0].Headers["cookie"].GetRegex()).To(Equal(`^(.*;\s*)?tester=yes(;.*)?$`))
		for _, r := range http[:2] {
			g.Expect(r.Route).To(HaveLen(1))
			g.Expect(r.Route[0].Destination.Subset).To(Equal("canary"))
		}
		w, _ := traffic.CanaryWeight(&vs.Spec)
		g.Expect(w).To(BeZero())
		g.Expect(http[2].Mirror.GetSubset()).To(Equal("canary"))
		g.Expect(http[2].MirrorPercentage.GetValue()).To(Equal(20.0))
	}, timeout, poll).Should(Succeed())
}

func expectHTTPRouteMatches(g *WithT, app *v1.CanaryApp) {
	g.Eventually(func(g Gomega) {
		rules := httpRoute(g, app.Namespace, appName).Spec.Rules
		g.Expect(rules).To(HaveLen(3))
		h := rules[0].Matches[0].Headers[0]
		g.Expect([]string{string(h.Name), h.Value, string(*h.Type)}).To(Equal([]string{"X-Canary", "always", "Exact"}))
		c := rules[1].Matches[0].Headers[0]
		g.Expect([]string{string(c.Name), c.Value, string(*c.Type)}).To(Equal([]string{"Cookie", `^(.*;\s*)?tester=yes(;.*)?$`, "RegularExpression"}))
		for _, r := range rules[:2] {
			g.Expect(r.BackendRefs).To(HaveLen(1))
			g.Expect(string(r.BackendRefs[0].Name)).To(Equal(appName + "-canary"))
		}
		g.Expect(routeWeight(g, app)).To(BeZero())
		g.Expect(rules[2].Filters).To(HaveLen(1))
		m := rules[2].Filters[0].RequestMirror
		g.Expect(string(m.BackendRef.Name)).To(Equal(appName + "-canary"))
		g.Expect(*m.Percent).To(Equal(int32(20)))
	}, timeout, poll).Should(Succeed())
}

// TestRouterNotEnabled: an app naming a router the operator does not run
// is stalled with RouterNotEnabled, and nothing is deployed for it.
func TestRouterNotEnabled(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil, withRoutes(nil, traffic.IstioProvider))
	ns := env.NewNamespace(t)
	app := sample(ns, prom.URL)
	onGatewayAPI(app)
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRouterNotEnabled),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonRouterNotEnabled),
	))
	g.Expect(condition(get(g, app), v1.ConditionStalled).Message).To(ContainSubstring(`"gatewayapi"`))
	g.Consistently(func() *appsv1.Deployment { return deployment(g, ns, appName) }, time.Second, poll).Should(BeNil())
}

// TestProviderSwitchRetiresRoutes: moving a stable app from gatewayapi to
// istio removes its HTTPRoute and track Services once Istio routes it, and
// back again removes the Istio objects.
func TestProviderSwitchRetiresRoutes(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, onGatewayAPI)
	exists := func(obj client.Object, name string) func() bool {
		return func() bool {
			return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj) == nil
		}
	}
	g.Expect(exists(&gatewayv1.HTTPRoute{}, appName)()).To(BeTrue())

	setProvider(g, app, v1.TrafficIstio)
	g.Eventually(exists(&istionetworking.VirtualService{}, appName), timeout, poll).Should(BeTrue())
	g.Eventually(exists(&gatewayv1.HTTPRoute{}, appName), timeout, poll).Should(BeFalse())
	g.Eventually(exists(&corev1.Service{}, appName+"-primary"), timeout, poll).Should(BeFalse())
	g.Expect(exists(&corev1.Service{}, appName)()).To(BeTrue(), "the app's Service stays")

	setProvider(g, app, v1.TrafficGatewayAPI)
	g.Eventually(exists(&gatewayv1.HTTPRoute{}, appName), timeout, poll).Should(BeTrue())
	g.Eventually(exists(&istionetworking.VirtualService{}, appName), timeout, poll).Should(BeFalse())
	g.Eventually(exists(&istionetworking.DestinationRule{}, appName), timeout, poll).Should(BeFalse())
}

func setProvider(g *WithT, app *v1.CanaryApp, p v1.TrafficProvider) {
	cur := get(g, app)
	base := cur.DeepCopy()
	cur.Spec.Traffic = &v1.TrafficSpec{Provider: p}
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
}

// TestGatewayAPIStepsWriteAtMostThree: on the gatewayapi router too, a
// steady app writes nothing, and no reconcile from a new image to its
// promotion writes more than three times (the HTTPRoute, status, one
// Deployment), but the first: with canaryMatch the HTTPRoute gains the
// tester's rule as the canary Deployment is created (create, its
// managedFields, the route, status). Between the steps nothing is written:
// the HTTPRoute read back equals the one built, defaults and all, match
// rules included.
func TestGatewayAPIStepsWriteAtMostThree(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	d := newDirect(t)
	d.r.Router = traffic.NewRouters(traffic.Deps{Client: d.r.Client, APIReader: d.r.APIReader}, routers.All())
	ns := env.NewNamespace(t)
	kubelet(t, ns, nil)
	app := sample(ns, prom.URL)
	onGatewayAPI(app)
	app.Spec.Traffic.CanaryMatch = []v1.TrafficMatch{{Headers: []v1.HeaderMatch{{Name: "x-canary", Value: "1"}}}}
	g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	d.reconcileUntil(t, g, app, stable(image("v1")))
	for range 5 {
		g.Expect(d.reconcile(g, app)).To(BeZero(), "a reconcile of the steady app wrote")
	}

	setImage(g, app, image("v2"))
	writes := d.reconcileUntil(t, g, app, func(a *v1.CanaryApp) bool {
		return stable(image("v2"))(a) && deployment(g, ns, canaryName) == nil
	})
	t.Logf("writes per reconcile: %v", writes)
	g.Expect(writes[0]).To(BeNumerically("<=", 4), "writes per reconcile: %v", writes)
	for _, w := range writes[1:] {
		g.Expect(w).To(BeNumerically("<=", 3), "writes per reconcile: %v", writes)
	}
	for range 5 {
		g.Expect(d.reconcile(g, app)).To(BeZero(), "a reconcile after the promotion wrote")
	}
}

// TestTrafficValidation: the API server refuses spec.traffic that no
// router can honour, each with a message saying why.
func TestTrafficValidation(t *testing.T) {
	ns := env.NewNamespace(t)
	gw := func(a *v1.CanaryApp, refs ...v1.ParentRef) {
		a.Spec.Traffic = &v1.TrafficSpec{Provider: v1.TrafficGatewayAPI, GatewayAPI: &v1.GatewayAPITraffic{ParentRefs: refs}}
	}
	header := func(name, value string) v1.HeaderMatch { return v1.HeaderMatch{Name: name, Value: value} }
	cases := []struct {
		name   string
		mutate func(*v1.CanaryApp)
		want   string
	}{
		{"unknown provider", func(a *v1.CanaryApp) { a.Spec.Traffic = &v1.TrafficSpec{Provider: "linkerd"} }, "provider"},
		{"gatewayapi settings on istio", func(a *v1.CanaryApp) {
			a.Spec.Traffic = &v1.TrafficSpec{GatewayAPI: &v1.GatewayAPITraffic{}}
		}, "traffic.gatewayapi is read only with traffic.provider gatewayapi"},
		{"istio gateways on gatewayapi", func(a *v1.CanaryApp) { gw(a); a.Spec.Gateways = []string{"public"} }, "gateways are Istio Gateways"},
		{"name too long for the primary Service", func(a *v1.CanaryApp) { gw(a); a.Name = strings.Repeat("a", 56) }, "at most 55 characters"},
		{"Service parent elsewhere", func(a *v1.CanaryApp) { gw(a, v1.ParentRef{Kind: "Service", Namespace: "team-b", Name: "payments"}) }, "a Service parent is the app's own Service"},
		{"Gateway with the core group", func(a *v1.CanaryApp) { gw(a, v1.ParentRef{Group: ptr(""), Name: "public"}) }, "group must be gateway.networking.k8s.io"},
		{"parent kind", func(a *v1.CanaryApp) { gw(a, v1.ParentRef{Kind: "TCPRoute", Name: "x"}) }, "kind"},
		{"empty match", func(a *v1.CanaryApp) { a.Spec.Traffic = &v1.TrafficSpec{CanaryMatch: []v1.TrafficMatch{{}}} }, "needs a header or a cookie"},
		{"header twice", func(a *v1.CanaryApp) {
			a.Spec.Traffic = &v1.TrafficSpec{CanaryMatch: []v1.TrafficMatch{{Headers: []v1.HeaderMatch{header("X-A", "1"), header("x-a", "2")}}}}
		}, "names each header once"},
		{"cookie and Cookie header", func(a *v1.CanaryApp) {
			a.Spec.Traffic = &v1.TrafficSpec{CanaryMatch: []v1.TrafficMatch{{Headers: []v1.HeaderMatch{header("Cookie", "a=b")}, Cookie: &v1.CookieMatch{Name: "t", Value: "1"}}}}
		}, "cannot match the Cookie header too"},
		{"header name", func(a *v1.CanaryApp) {
			a.Spec.Traffic = &v1.TrafficSpec{CanaryMatch: []v1.TrafficMatch{{Headers: []v1.HeaderMatch{header("x canary", "1")}}}}
		}, "name"},
		{"cookie value", func(a *v1.CanaryApp) {
			a.Spec.Traffic = &v1.TrafficSpec{CanaryMatch: []v1.TrafficMatch{{Cookie: &v1.CookieMatch{Name: "t", Value: "a;b"}}}}
		}, "value"},
		{"mirror 0", func(a *v1.CanaryApp) { a.Spec.Traffic = &v1.TrafficSpec{MirrorPercent: ptr(int32(0))} }, "mirrorPercent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			tc.mutate(app)
			err := env.Client.Create(context.Background(), app)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
	t.Run("a Gateway API app with parents and matches applies", func(t *testing.T) {
		g := NewWithT(t)
		app := sample(ns, "http://prometheus.istio-system.svc:9090")
		gw(app, v1.ParentRef{Namespace: "infra", Name: "public", SectionName: "https", Port: ptr(int32(443))}, v1.ParentRef{Kind: "Service", Group: ptr(""), Name: app.Name})
		app.Spec.Traffic.CanaryMatch = []v1.TrafficMatch{{Headers: []v1.HeaderMatch{{Name: "X-Canary", Value: "^(yes|1)$", Type: v1.HeaderMatchRegularExpression}}, Cookie: &v1.CookieMatch{Name: "tester", Value: "yes"}}}
		app.Spec.Traffic.MirrorPercent = ptr(int32(10))
		g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
	})
}
