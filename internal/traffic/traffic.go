// Package traffic splits a CanaryApp's traffic between its primary and
// canary Deployments.
//
// The Istio router owns these objects per CanaryApp named N in namespace NS,
// all in NS and labelled like the workloads (see package workload):
//
//   - DestinationRule N: host N, subsets "primary" and "canary" selecting
//     the pods by their canary.atze.io/track label.
//   - VirtualService N: host N on the mesh (no gateways: Istio's default),
//     one HTTP route with two weighted destinations on port
//     spec.imageListenPort: subset primary gets 100-w percent, subset
//     canary w percent.
//   - VirtualService N-gateways, only while the route policy (package
//     routepolicy) allows at least one of spec.gateways: the same route for
//     host N and the allowed spec.hosts, bound to the allowed gateways and
//     not to the mesh.
//
// Before that route, while a canary runs, one route per
// spec.traffic.canaryMatch entry sends the requests with its headers (or
// cookie, as a regular expression on the cookie header) to subset canary
// alone, at every weight. While a canary
// runs at weight 0, spec.traffic.mirrorPercent mirrors that share of the
// weighted route's requests to subset canary.
//
// The host is the Service N, so Istio's telemetry keeps reporting both
// tracks as destination_service_name="N": a Prometheus query on
// istio_requests_total written for the app keeps working during a canary.
//
// Two VirtualServices, because a VirtualService binds every host to every
// gateway it names. Hosts other than the app's own Service must never reach
// the mesh: there they would route another team's host for every sidecar,
// and Istio rejects "*" on the mesh. Keeping the mesh VirtualService to the
// own host lets extra hosts live on gateways only.
//
// Neither VirtualService sets exportTo. The mesh one must stay visible to
// callers in every namespace, or their sidecars would not split the own
// host's traffic. The gateway one must be visible to the gateway's proxy,
// which Istio looks up by the proxy's namespace, not the Gateway object's:
// the original demo's Gateway lives in "default" while its proxy runs in
// istio-system, so exportTo ["."] (or the Gateway's namespace) would silently
// unroute the ingress. Its hosts are kept off the sidecars by not naming the
// mesh, which exportTo would not add to.
package traffic

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/protobuf/proto"
	istionetworking "istio.io/api/networking/v1"
	istioclient "istio.io/client-go/pkg/apis/networking/v1"
	istionetworkingac "istio.io/client-go/pkg/applyconfiguration/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/workload"
)

// Subset names in the DestinationRule, one per track.
const (
	SubsetPrimary = string(workload.TrackPrimary)
	SubsetCanary  = string(workload.TrackCanary)
)

// DestinationRuleName is the name of the app's DestinationRule.
func DestinationRuleName(app *v1.CanaryApp) string { return app.Name }

// VirtualServiceName is the name of the app's mesh VirtualService.
func VirtualServiceName(app *v1.CanaryApp) string { return app.Name }

// GatewayVirtualServiceName is the name of the app's VirtualService for the
// allowed gateways of spec.gateways.
func GatewayVirtualServiceName(app *v1.CanaryApp) string { return app.Name + "-gateways" }

// Istio routes with an Istio DestinationRule and VirtualServices, written
// with server-side apply (package apply): it never changes such objects when
// a person created them, and applying the same weight again changes nothing.
type Istio struct {
	c      client.Client
	reader client.Reader
	policy *routepolicy.Policy
}

var _ Router = (*Istio)(nil)

// Option configures an Istio router.
type Option func(*Istio)

// WithRoutePolicy makes the router route the gateways and hosts policy
// allows. Without it, or with a nil policy, an app gets its own Service host
// on the mesh only.
func WithRoutePolicy(policy *routepolicy.Policy) Option {
	return func(r *Istio) { r.policy = policy }
}

// WithAPIReader gives the router a reader that goes to the API server, for
// the rare re-read when an object it was about to create already exists
// (see apply.WithAPIReader).
func WithAPIReader(reader client.Reader) Option {
	return func(r *Istio) { r.reader = reader }
}

// NewIstio returns a router writing through c. c's scheme must know
// CanaryApp; see package apply about which client to pass.
func NewIstio(c client.Client, opts ...Option) *Istio {
	r := &Istio{c: c}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Route implements Router. The DestinationRule is applied first, so that no
// VirtualService ever names a subset Istio does not know; then the mesh
// VirtualService, so that the own host's weights move even when the gateway
// one cannot be written. When the policy refused part of spec.gateways or
// spec.hosts, Route still writes the allowed part and then returns a
// *RouteNotAllowedError.
func (r *Istio) Route(ctx context.Context, app *v1.CanaryApp, canaryWeight int32) error {
	if canaryWeight < 0 || canaryWeight > 100 {
		return fmt.Errorf("canary weight %d of %s is not a percentage", canaryWeight, klog.KObj(app))
	}
	// The CRD already demands this. The name becomes a mesh-wide host, so a
	// dotted one such as "payments.team-b.svc.cluster.local" must never get
	// here by another path.
	if msgs := validation.IsDNS1035Label(workload.ServiceName(app)); len(msgs) > 0 {
		return fmt.Errorf("%s: the Service name is no DNS-1035 label, so it is routed nowhere: %s", klog.KObj(app), strings.Join(msgs, "; "))
	}
	decision := r.policy.Decide(app.Namespace, workload.ServiceName(app), app.Spec.Gateways, app.Spec.Hosts)

	dr, curDR := DestinationRule(app), &istioclient.DestinationRule{}
	if !r.unchanged(ctx, app, DestinationRuleName(app), curDR, &curDR.Spec, dr.Spec, dr.Labels) {
		if err := apply.Apply(ctx, r.c, app, dr, apply.WithAPIReader(r.reader)); err != nil {
			return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
		}
	}
	if err := r.applyVirtualService(ctx, app, VirtualService(app, canaryWeight)); err != nil {
		return err
	}
	if gw := GatewayVirtualService(app, canaryWeight, decision); gw != nil {
		if err := r.applyVirtualService(ctx, app, gw); err != nil {
			return err
		}
	} else {
		// A gateway VirtualService left from an earlier spec or a looser
		// policy would keep routing what is no longer allowed. One that
		// this app does not control is not ours to delete, and nothing
		// needs its name now.
		old := &istioclient.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: GatewayVirtualServiceName(app)}}
		if err := apply.Delete(ctx, r.c, app, old); err != nil && !apply.IsForeignObject(err) {
			return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
		}
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Routed traffic", "canaryApp", klog.KObj(app), "canaryWeight", canaryWeight,
		"gateways", len(decision.Gateways), "refused", len(decision.Refused))
	if len(decision.Refused) > 0 {
		return &RouteNotAllowedError{Namespace: app.Namespace, Name: app.Name, Refused: decision.Refused}
	}
	return nil
}

// applyVirtualService applies vs unless that would change nothing.
func (r *Istio) applyVirtualService(ctx context.Context, app *v1.CanaryApp, vs *istionetworkingac.VirtualServiceApplyConfiguration) error {
	cur := &istioclient.VirtualService{}
	if r.unchanged(ctx, app, *vs.Name, cur, &cur.Spec, vs.Spec, vs.Labels) {
		return nil
	}
	if err := apply.Apply(ctx, r.c, app, vs, apply.WithAPIReader(r.reader)); err != nil {
		return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
	}
	return nil
}

// unchanged reports whether the object name (read into obj, whose spec field
// is cur) is controlled by app and already has the wanted spec
// and labels, so that applying it again would change nothing. Route runs at
// every analysis check; skipping these no-op applies saves two API writes
// each time, while any drift (a person editing the weights) still differs
// and is applied over.
func (r *Istio) unchanged(ctx context.Context, app *v1.CanaryApp, name string, obj client.Object, cur, want proto.Message, labels map[string]string) bool {
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: name}, obj); err != nil {
		return false
	}
	if !metav1.IsControlledBy(obj, app) || !proto.Equal(cur, want) {
		return false
	}
	have := obj.GetLabels()
	for k, v := range labels {
		if have[k] != v {
			return false
		}
	}
	return true
}

// DestinationRule is the app's DestinationRule: one subset per track.
func DestinationRule(app *v1.CanaryApp) *istionetworkingac.DestinationRuleApplyConfiguration {
	subset := func(t workload.Track) *istionetworking.Subset {
		return &istionetworking.Subset{
			Name:   string(t),
			Labels: map[string]string{workload.LabelTrack: string(t)},
		}
	}
	dr := istionetworkingac.DestinationRule(DestinationRuleName(app), app.Namespace).
		WithLabels(workload.Labels(app))
	// Set, not WithSpec: WithSpec takes the protobuf message by value, which
	// copies its internal lock.
	dr.Spec = &istionetworking.DestinationRule{
		Host:    workload.ServiceName(app),
		Subsets: []*istionetworking.Subset{subset(workload.TrackPrimary), subset(workload.TrackCanary)},
	}
	return dr
}

// VirtualService is the app's mesh VirtualService sending canaryWeight
// percent to the canary subset and the rest to the primary subset.
// canaryWeight must be within 0-100. It holds the own Service host only and
// names no gateway, so Istio binds it to the mesh alone, whatever the spec
// says.
func VirtualService(app *v1.CanaryApp, canaryWeight int32) *istionetworkingac.VirtualServiceApplyConfiguration {
	vs := istionetworkingac.VirtualService(VirtualServiceName(app), app.Namespace).
		WithLabels(workload.Labels(app))
	vs.Spec = &istionetworking.VirtualService{
		Hosts: []string{workload.ServiceName(app)},
		Http:  httpRoutes(app, canaryWeight),
	}
	return vs
}

// GatewayVirtualService is the app's VirtualService for the gateways and
// hosts the route policy allowed (d, from routepolicy.Policy.Decide for this
// app), with the same weights as VirtualService; nil when d allows no
// gateway. It holds the own Service host and d.Hosts, and names d.Gateways
// as "namespace/name" but never the mesh.
func GatewayVirtualService(app *v1.CanaryApp, canaryWeight int32, d routepolicy.Decision) *istionetworkingac.VirtualServiceApplyConfiguration {
	if len(d.Gateways) == 0 {
		return nil
	}
	gateways := make([]string, len(d.Gateways))
	for i, g := range d.Gateways {
		gateways[i] = g.String()
	}
	vs := istionetworkingac.VirtualService(GatewayVirtualServiceName(app), app.Namespace).
		WithLabels(workload.Labels(app))
	vs.Spec = &istionetworking.VirtualService{
		Hosts:    append([]string{workload.ServiceName(app)}, d.Hosts...),
		Gateways: gateways,
		Http:     httpRoutes(app, canaryWeight),
	}
	return vs
}

// httpRoutes is the one weighted route both VirtualServices carry.
func httpRoutes(app *v1.CanaryApp, canaryWeight int32) []*istionetworking.HTTPRoute {
	host := workload.ServiceName(app)
	dest := func(subset string, weight int32) *istionetworking.HTTPRouteDestination {
		return &istionetworking.HTTPRouteDestination{
			Destination: &istionetworking.Destination{
				Host:   host,
				Subset: subset,
				Port:   &istionetworking.PortSelector{Number: uint32(app.Spec.ImageListenPort)},
			},
			Weight: weight,
		}
	}
	var routes []*istionetworking.HTTPRoute
	for i, m := range canaryMatches(app) {
		routes = append(routes, &istionetworking.HTTPRoute{
			Name:  fmt.Sprintf("%s-canary-match-%d", host, i),
			Match: []*istionetworking.HTTPMatchRequest{{Headers: headerMatches(m)}},
			Route: []*istionetworking.HTTPRouteDestination{dest(SubsetCanary, 100)},
		})
	}
	weighted := &istionetworking.HTTPRoute{
		Name: host,
		Route: []*istionetworking.HTTPRouteDestination{
			dest(SubsetPrimary, 100-canaryWeight),
			dest(SubsetCanary, canaryWeight),
		},
	}
	if p := app.Spec.MirrorPercent(); p > 0 && canaryWeight == 0 && app.Status.CanaryImage != "" {
		weighted.Mirror = dest(SubsetCanary, 0).Destination
		weighted.MirrorPercentage = &istionetworking.Percent{Value: float64(p)}
	}
	return append(routes, weighted)
}

// canaryMatches are spec.traffic.canaryMatch while a canary runs; without
// one a tester's request goes where everyone's does, not to a track with
// no pods.
func canaryMatches(app *v1.CanaryApp) []v1.TrafficMatch {
	if app.Status.CanaryImage == "" {
		return nil
	}
	return app.Spec.CanaryMatches()
}

// headerMatches are m's headers (Istio wants lower-case names) and its
// cookie as a regular expression on the cookie header.
func headerMatches(m v1.TrafficMatch) map[string]*istionetworking.StringMatch {
	out := map[string]*istionetworking.StringMatch{}
	for _, h := range m.Headers {
		sm := &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Exact{Exact: h.Value}}
		if h.Type == v1.HeaderMatchRegularExpression {
			sm = &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Regex{Regex: h.Value}}
		}
		out[strings.ToLower(h.Name)] = sm
	}
	if m.Cookie != nil {
		out["cookie"] = &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Regex{Regex: CookieRegex(*m.Cookie)}}
	}
	return out
}

// CookieRegex is the RE2 expression matching a Cookie header that holds
// cookie c: "name=value" at the start or after "; ", up to the next ";".
func CookieRegex(c v1.CookieMatch) string {
	return fmt.Sprintf(`^(.*;\s*)?%s=%s(;.*)?$`, regexp.QuoteMeta(c.Name), regexp.QuoteMeta(c.Value))
}

// CanaryWeight reads the canary subset's weight from a VirtualService built
// by this package: from its last (weighted) route, after the routes of
// spec.traffic.canaryMatch. ok is false when vs has no route to the canary
// subset.
func CanaryWeight(vs *istionetworking.VirtualService) (weight int32, ok bool) {
	if http := vs.GetHttp(); len(http) > 0 {
		for _, d := range http[len(http)-1].GetRoute() {
			if d.GetDestination().GetSubset() == SubsetCanary {
				return d.GetWeight(), true
			}
		}
	}
	return 0, false
}
