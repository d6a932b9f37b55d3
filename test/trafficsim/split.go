package main

import (
	"fmt"
	"slices"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
)

// Subset names the operator uses in its VirtualService and DestinationRule.
const (
	SubsetPrimary = "primary"
	SubsetCanary  = "canary"
)

// ContainerName is the container of the app in the operator's Deployments.
// A Deployment without it is read from its first container.
const ContainerName = "app"

// Reasons a request reaches no pod, the reason label of
// trafficsim_requests_unrouted_total.
const (
	UnroutedNoVirtualService = "no_virtualservice"
	UnroutedNoRoute          = "no_route"
	UnroutedNoDeployment     = "no_deployment"
	UnroutedNoAvailablePods  = "no_available_pods"
)

// Target is one weighted destination of an app's traffic: a subset of the
// VirtualService and the Deployment whose pods serve it.
type Target struct {
	// Subset is the VirtualService destination subset.
	Subset string
	// Weight is the destination's route weight.
	Weight int32
	// Workload is the name of the Deployment serving the subset.
	Workload string
	// Found is false when that Deployment does not exist.
	Found bool
	// Image is the image the Deployment's pods run.
	Image string
	// Available is true when the Deployment has at least one available pod.
	Available bool
	// Service is the Service the request is addressed to, when it is not
	// the app's own (a Gateway API backendRef such as "<app>-canary").
	Service string
}

// Version is the image tag of the target's pods.
func (t Target) Version() string { return ImageVersion(t.Image) }

// Split is the live traffic split of one app.
type Split struct {
	// App is the app's name: the VirtualService, the Service and the primary
	// Deployment are named after it.
	App string
	// Namespace is the app's namespace.
	Namespace string
	// Targets are the destinations of the first HTTP route, in order. Empty
	// when Unrouted says why.
	Targets []Target
	// Unrouted is the reason no request can be routed, or "".
	Unrouted string
	// Matches are the routes that take requests with certain headers
	// before the weights do (spec.traffic.canaryMatch); see PickFor.
	Matches []MatchRoute
}

// Pick chooses the target of one request from a uniform random number r in
// [0,1), with each target's chance proportional to its weight. It returns
// false when the split routes nowhere.
func (s Split) Pick(r float64) (Target, bool) {
	if s.Unrouted != "" || len(s.Targets) == 0 {
		return Target{}, false
	}
	// Envoy ignores the weight of a lone destination: it gets everything.
	if len(s.Targets) == 1 {
		return s.Targets[0], true
	}
	var total int64
	for _, t := range s.Targets {
		total += int64(max(t.Weight, 0))
	}
	if total == 0 {
		return Target{}, false
	}
	x := int64(r * float64(total))
	for _, t := range s.Targets {
		w := int64(max(t.Weight, 0))
		if x < w {
			return t, true
		}
		x -= w
	}
	// Only reachable for r rounding up to 1: give it to the last weighted
	// target, as x == total would.
	for _, t := range slices.Backward(s.Targets) {
		if t.Weight > 0 {
			return t, true
		}
	}
	return Target{}, false
}

// String is a one-line description for logs, such as
// "primary=90(v1) canary=10(v3)".
func (s Split) String() string {
	if s.Unrouted != "" {
		return "unrouted: " + s.Unrouted
	}
	out := ""
	for i, t := range s.Targets {
		if i > 0 {
			out += " "
		}
		switch {
		case !t.Found:
			out += fmt.Sprintf("%s=%d(no deployment %s)", t.Subset, t.Weight, t.Workload)
		case !t.Available:
			out += fmt.Sprintf("%s=%d(%s, no available pods)", t.Subset, t.Weight, t.Version())
		default:
			out += fmt.Sprintf("%s=%d(%s)", t.Subset, t.Weight, t.Version())
		}
	}
	return out
}

// WorkloadName is the Deployment that serves a subset of app: the primary
// subset is the Deployment named like the app, any other subset S is the
// Deployment "<app>-S". A destination without a subset goes to the primary.
func WorkloadName(app, subset string) string {
	if subset == "" || subset == SubsetPrimary {
		return app
	}
	return app + "-" + subset
}

// BuildSplit computes an app's split from its VirtualService (nil when it
// does not exist) and the Deployments found in its namespace, by name.
func BuildSplit(app, namespace string, vs *istionetv1.VirtualService, deployments map[string]*appsv1.Deployment) Split {
	s := Split{App: app, Namespace: namespace}
	if vs == nil {
		s.Unrouted = UnroutedNoVirtualService
		return s
	}
	http := vs.Spec.GetHttp()
	// The weighted route is the one without a match; routes with one
	// (canaryMatch) come before it.
	for len(http) > 1 && len(http[0].GetMatch()) > 0 {
		http = http[1:]
	}
	if len(http) == 0 || len(http[0].GetRoute()) == 0 {
		s.Unrouted = UnroutedNoRoute
		return s
	}
	s.Matches = istioMatches(app, vs, deployments)
	for _, d := range http[0].GetRoute() {
		subset := d.GetDestination().GetSubset()
		t := Target{Subset: subset, Weight: d.GetWeight(), Workload: WorkloadName(app, subset)}
		if subset == "" {
			t.Subset = SubsetPrimary
		}
		if dep, ok := deployments[t.Workload]; ok && dep != nil {
			t.Found = true
			t.Image = deploymentImage(dep)
			t.Available = dep.Status.AvailableReplicas > 0
		}
		s.Targets = append(s.Targets, t)
	}
	return s
}

// deploymentImage is the image of the app's container: the one the
// operator's canary.atze.io/container annotation names (an app with a pod
// template), else ContainerName, else the first.
func deploymentImage(dep *appsv1.Deployment) string {
	containers := dep.Spec.Template.Spec.Containers
	name := ContainerName
	if n := dep.Annotations["canary.atze.io/container"]; n != "" {
		name = n
	}
	for _, c := range containers {
		if c.Name == name {
			return c.Image
		}
	}
	if len(containers) > 0 {
		return containers[0].Image
	}
	return ""
}
