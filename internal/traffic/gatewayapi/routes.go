package gatewayapi

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/workload"
)

// Decision is what the app's Gateway HTTPRoute may hold.
type Decision struct {
	// Parents are the allowed Gateway parentRefs, in spec order, with
	// their namespace, group and kind spelled out.
	Parents []gatewayv1.ParentReference
	// Hostnames are the hostnames of the Gateway route: the allowed
	// spec.hosts, or the own Service's names when there are none; nil
	// (every hostname of the listener) when "*" is allowed.
	Hostnames []gatewayv1.Hostname
	// Refused lists what the policy left out.
	Refused []routepolicy.Refusal
}

// Decide applies the route policy to the app's parentRefs and spec.hosts.
// A Gateway parentRef is allowed as the --allowed-gateways entry for its
// namespace/name allows it, for the app's namespace; a Service parentRef
// only when it is the app's own Service, which the mesh route always
// carries. Hosts are allowed as on an Istio gateway.
func Decide(p *routepolicy.Policy, app *v1.CanaryApp) Decision {
	var d Decision
	var gateways []string
	var refs []v1.ParentRef
	if app.Spec.Traffic != nil && app.Spec.Traffic.GatewayAPI != nil {
		refs = app.Spec.Traffic.GatewayAPI.ParentRefs
	}
	for _, ref := range refs {
		if ref.Kind == "Service" {
			if ref.Name != workload.ServiceName(app) {
				d.Refused = append(d.Refused, routepolicy.Refusal{Gateway: "Service/" + ref.Name,
					Rule: "a Service parent must be the app's own Service " + workload.ServiceName(app)})
			}
			continue
		}
		gateways = append(gateways, gatewayKey(app, ref))
	}
	pd := p.Decide(app.Namespace, workload.ServiceName(app), gateways, app.Spec.Hosts)
	d.Refused = append(d.Refused, pd.Refused...)
	for _, ref := range refs {
		if ref.Kind == "Service" {
			continue
		}
		if slices.ContainsFunc(pd.Gateways, func(g routepolicy.Gateway) bool { return g.String() == gatewayKey(app, ref) }) {
			d.Parents = append(d.Parents, gatewayParent(app, ref))
		}
	}
	d.Hostnames = hostnames(app, pd.Hosts)
	return d
}

// gatewayKey is the "namespace/name" of a Gateway parentRef.
func gatewayKey(app *v1.CanaryApp, ref v1.ParentRef) string {
	return parentNamespace(app, ref) + "/" + ref.Name
}

// parentNamespace is a parentRef's namespace: the app's when not given.
func parentNamespace(app *v1.CanaryApp, ref v1.ParentRef) string {
	if ref.Namespace == "" {
		return app.Namespace
	}
	return ref.Namespace
}

func gatewayParent(app *v1.CanaryApp, ref v1.ParentRef) gatewayv1.ParentReference {
	ns := parentNamespace(app, ref)
	p := gatewayv1.ParentReference{
		Group:     ptr.To(gatewayv1.Group(gatewayv1.GroupName)),
		Kind:      ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace(ns)),
		Name:      gatewayv1.ObjectName(ref.Name),
		Port:      ref.Port,
	}
	if ref.SectionName != "" {
		p.SectionName = ptr.To(gatewayv1.SectionName(ref.SectionName))
	}
	return p
}

func hostnames(app *v1.CanaryApp, allowed []string) []gatewayv1.Hostname {
	if slices.Contains(allowed, "*") {
		return nil
	}
	if len(allowed) == 0 {
		allowed = routepolicy.OwnHosts(app.Namespace, workload.ServiceName(app))
	}
	out := make([]gatewayv1.Hostname, len(allowed))
	for i, h := range allowed {
		out[i] = gatewayv1.Hostname(h)
	}
	return out
}

// MeshRoute is the app's GAMMA HTTPRoute, parent the own Service N,
// sending canaryWeight percent (0-100) to the canary.
//
// Every field the API server would default is set, so that the object read
// back equals this one when nothing changed.
func MeshRoute(app *v1.CanaryApp, canaryWeight int32) *gatewayv1.HTTPRoute {
	route := newRoute(app, RouteName(app))
	route.Spec.ParentRefs = []gatewayv1.ParentReference{{
		Group: ptr.To(gatewayv1.Group("")),
		Kind:  ptr.To(gatewayv1.Kind("Service")),
		Name:  gatewayv1.ObjectName(workload.ServiceName(app)),
	}}
	route.Spec.Rules = rules(app, canaryWeight)
	return route
}

// GatewayRoute is the app's HTTPRoute for the Gateways d allows, with the
// rules of MeshRoute; nil when d allows none.
func GatewayRoute(app *v1.CanaryApp, canaryWeight int32, d Decision) *gatewayv1.HTTPRoute {
	if len(d.Parents) == 0 {
		return nil
	}
	route := newRoute(app, GatewayRouteName(app))
	route.Spec.ParentRefs = d.Parents
	route.Spec.Hostnames = d.Hostnames
	route.Spec.Rules = rules(app, canaryWeight)
	return route
}

func newRoute(app *v1.CanaryApp, name string) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: name, Labels: workload.Labels(app)},
	}
}

// rules are, while a canary runs, one rule per spec.traffic.canaryMatch
// entry, each sending its requests to the canary alone, and then the
// weighted rule for all other requests. Gateway API prefers the rule with more header matches, so a
// matching request never takes the weighted rule.
func rules(app *v1.CanaryApp, canaryWeight int32) []gatewayv1.HTTPRouteRule {
	var out []gatewayv1.HTTPRouteRule
	for _, m := range app.Spec.CanaryMatches() {
		if app.Status.CanaryImage == "" {
			// No canary: a tester's request goes where everyone's does.
			break
		}
		out = append(out, gatewayv1.HTTPRouteRule{
			Matches:     []gatewayv1.HTTPRouteMatch{{Path: rootPath(), Headers: headerMatches(m)}},
			BackendRefs: []gatewayv1.HTTPBackendRef{backend(app, workload.TrackCanary, 1)},
		})
	}
	weighted := gatewayv1.HTTPRouteRule{
		Matches: []gatewayv1.HTTPRouteMatch{{Path: rootPath()}},
		BackendRefs: []gatewayv1.HTTPBackendRef{
			backend(app, workload.TrackPrimary, 100-canaryWeight),
			backend(app, workload.TrackCanary, canaryWeight),
		},
	}
	if p := app.Spec.MirrorPercent(); p > 0 && canaryWeight == 0 && app.Status.CanaryImage != "" {
		weighted.Filters = []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterRequestMirror,
			RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
				BackendRef: backend(app, workload.TrackCanary, 1).BackendObjectReference,
				Percent:    ptr.To(p),
			},
		}}
	}
	return append(out, weighted)
}

func rootPath() *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}
}

func backend(app *v1.CanaryApp, t workload.Track, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")),
			Kind:  ptr.To(gatewayv1.Kind("Service")),
			Name:  gatewayv1.ObjectName(workload.TrackServiceName(app, t)),
			Port:  ptr.To(gatewayv1.PortNumber(app.Spec.ImageListenPort)),
		},
		Weight: ptr.To(weight),
	}}
}

// headerMatches are m's headers, and its cookie as a regular expression on
// the Cookie header (Gateway API matches no cookies of its own).
func headerMatches(m v1.TrafficMatch) []gatewayv1.HTTPHeaderMatch {
	var out []gatewayv1.HTTPHeaderMatch
	for _, h := range m.Headers {
		typ := gatewayv1.HeaderMatchExact
		if h.Type == v1.HeaderMatchRegularExpression {
			typ = gatewayv1.HeaderMatchRegularExpression
		}
		out = append(out, gatewayv1.HTTPHeaderMatch{Type: ptr.To(typ), Name: gatewayv1.HTTPHeaderName(h.Name), Value: h.Value})
	}
	if m.Cookie != nil {
		out = append(out, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression),
			Name: "Cookie", Value: traffic.CookieRegex(*m.Cookie)})
	}
	return out
}

// CanaryWeight reads the canary's weight from the last rule of an HTTPRoute
// built by this package. ok is false when it has no backendRef to the
// canary Service.
func CanaryWeight(app *v1.CanaryApp, route *gatewayv1.HTTPRoute) (weight int32, ok bool) {
	if len(route.Spec.Rules) == 0 {
		return 0, false
	}
	canary := workload.TrackServiceName(app, workload.TrackCanary)
	for _, b := range route.Spec.Rules[len(route.Spec.Rules)-1].BackendRefs {
		if string(b.Name) == canary {
			return ptr.Deref(b.Weight, 1), true
		}
	}
	return 0, false
}
