package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// HeaderMatch is one header condition of a match route: the header's
// value equals Value, or matches Regex when that is set.
type HeaderMatch struct {
	Name  string
	Value string
	Regex *regexp.Regexp
}

// Matches reports whether h satisfies m, as Envoy compares: the name
// case-insensitively, a regular expression against the whole value.
func (m HeaderMatch) Matches(h http.Header) bool {
	for _, v := range h.Values(m.Name) {
		if m.Regex != nil && m.Regex.MatchString(v) || m.Regex == nil && v == m.Value {
			return true
		}
	}
	return false
}

// MatchRoute sends the requests that match all of its headers to Target.
type MatchRoute struct {
	Headers []HeaderMatch
	Target  Target
}

// PickFor chooses the target of a request with headers h: the first match
// route whose headers all match, else the weighted split (Pick with r).
func (s Split) PickFor(h http.Header, r float64) (Target, bool) {
	for _, m := range s.Matches {
		all := true
		for _, hm := range m.Headers {
			all = all && hm.Matches(h)
		}
		if all && s.Unrouted == "" {
			return m.Target, true
		}
	}
	return s.Pick(r)
}

// TrackOfService is the track (subset) a backend Service of app serves:
// "<app>-primary" the primary, "<app>-canary" the canary; any other is
// served by the Deployment of the same name.
func TrackOfService(app, service string) string {
	if track, ok := strings.CutPrefix(service, app+"-"); ok && (track == SubsetPrimary || track == SubsetCanary) {
		return track
	}
	return service
}

// BuildHTTPRouteSplit computes an app's split from its Gateway API HTTPRoute
// (nil when it does not exist): the weights of the rule without header
// matches, and one match route per rule with header matches. The answers
// are counted under the backend Service's name (destination_service_name),
// as a mesh reports them.
func BuildHTTPRouteSplit(app, namespace string, route *gatewayv1.HTTPRoute, deployments map[string]*appsv1.Deployment) Split {
	s := Split{App: app, Namespace: namespace}
	if route == nil {
		s.Unrouted = UnroutedNoVirtualService
		return s
	}
	for _, rule := range route.Spec.Rules {
		headers := ruleHeaders(rule)
		if len(headers) == 0 && s.Targets == nil {
			for _, b := range rule.BackendRefs {
				s.Targets = append(s.Targets, backendTarget(app, b, deployments))
			}
			continue
		}
		if len(headers) > 0 && len(rule.BackendRefs) > 0 {
			s.Matches = append(s.Matches, MatchRoute{Headers: headers, Target: backendTarget(app, rule.BackendRefs[0], deployments)})
		}
	}
	if len(s.Targets) == 0 {
		s.Unrouted = UnroutedNoRoute
	}
	return s
}

func ruleHeaders(rule gatewayv1.HTTPRouteRule) []HeaderMatch {
	var out []HeaderMatch
	for _, m := range rule.Matches {
		for _, h := range m.Headers {
			hm := HeaderMatch{Name: string(h.Name), Value: h.Value}
			if ptr.Deref(h.Type, gatewayv1.HeaderMatchExact) == gatewayv1.HeaderMatchRegularExpression {
				re, err := regexp.Compile("^(?:" + h.Value + ")$")
				if err != nil {
					continue
				}
				hm.Regex = re
			}
			out = append(out, hm)
		}
	}
	return out
}

func backendTarget(app string, b gatewayv1.HTTPBackendRef, deployments map[string]*appsv1.Deployment) Target {
	track := TrackOfService(app, string(b.Name))
	t := Target{Subset: track, Weight: ptr.Deref(b.Weight, 1), Workload: WorkloadName(app, track), Service: string(b.Name)}
	if dep, ok := deployments[t.Workload]; ok && dep != nil {
		t.Found, t.Image, t.Available = true, deploymentImage(dep), dep.Status.AvailableReplicas > 0
	}
	return t
}

// istioMatches are the match routes of a VirtualService built by canaryop:
// every HTTP route with header matches, to its first destination.
func istioMatches(app string, vs *istionetv1.VirtualService, deployments map[string]*appsv1.Deployment) []MatchRoute {
	var out []MatchRoute
	for _, r := range vs.Spec.GetHttp() {
		if len(r.GetMatch()) == 0 || len(r.GetRoute()) == 0 {
			continue
		}
		var headers []HeaderMatch
		for name, sm := range r.GetMatch()[0].GetHeaders() {
			hm := HeaderMatch{Name: name, Value: sm.GetExact()}
			if sm.GetRegex() != "" {
				re, err := regexp.Compile("^(?:" + sm.GetRegex() + ")$")
				if err != nil {
					continue
				}
				hm.Regex = re
			}
			headers = append(headers, hm)
		}
		subset := r.GetRoute()[0].GetDestination().GetSubset()
		t := Target{Subset: subset, Weight: 100, Workload: WorkloadName(app, subset)}
		if subset == "" {
			t.Subset = SubsetPrimary
		}
		if dep, ok := deployments[t.Workload]; ok && dep != nil {
			t.Found, t.Image, t.Available = true, deploymentImage(dep), dep.Status.AvailableReplicas > 0
		}
		out = append(out, MatchRoute{Headers: headers, Target: t})
	}
	return out
}

// readHTTPRoute reads the app's HTTPRoute and its Deployments. A cluster
// without the Gateway API CRDs has no HTTPRoute.
func (o *Observer) readHTTPRoute(ctx context.Context, app string) (Split, error) {
	route := &gatewayv1.HTTPRoute{}
	if err := o.reader.Get(ctx, types.NamespacedName{Namespace: o.namespace, Name: app}, route); err != nil {
		if !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return Split{}, fmt.Errorf("getting HTTPRoute: %w", err)
		}
		route = nil
	}
	deployments := map[string]*appsv1.Deployment{}
	if route != nil {
		s := BuildHTTPRouteSplit(app, o.namespace, route, nil)
		for _, t := range append(s.Targets, matchTargets(s)...) {
			if err := o.readDeployment(ctx, t.Workload, deployments); err != nil {
				return Split{}, err
			}
		}
	}
	return BuildHTTPRouteSplit(app, o.namespace, route, deployments), nil
}

func matchTargets(s Split) []Target {
	out := make([]Target, len(s.Matches))
	for i, m := range s.Matches {
		out[i] = m.Target
	}
	return out
}

// readDeployment reads Deployment name into deployments, unless it does
// not exist.
func (o *Observer) readDeployment(ctx context.Context, name string, deployments map[string]*appsv1.Deployment) error {
	if _, done := deployments[name]; done {
		return nil
	}
	dep := &appsv1.Deployment{}
	err := o.reader.Get(ctx, types.NamespacedName{Namespace: o.namespace, Name: name}, dep)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("getting Deployment %s: %w", name, err)
	default:
		deployments[name] = dep
	}
	return nil
}
