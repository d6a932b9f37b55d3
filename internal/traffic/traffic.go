// Package traffic splits a CanaryApp's traffic between its primary and
// canary Deployments.
//
// The Istio router owns two objects per CanaryApp named N in namespace NS,
// both named N in NS and labelled like the workloads (see package workload):
//
//   - DestinationRule N: host N, subsets "primary" and "canary" selecting
//     the pods by their canary.atze.io/track label.
//   - VirtualService N: host N, one HTTP route with two weighted
//     destinations on port spec.imageListenPort: subset primary gets
//     100-w percent, subset canary w percent.
//
// The host is the Service N, so Istio's telemetry keeps reporting both
// tracks as destination_service_name="N": a Prometheus query on
// istio_requests_total written for the app keeps working during a canary.
package traffic

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	istionetworking "istio.io/api/networking/v1"
	istioclient "istio.io/client-go/pkg/apis/networking/v1"
	istionetworkingac "istio.io/client-go/pkg/applyconfiguration/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/workload"
)

// Router is the traffic-router seam.
type Router interface {
	// Route makes the DestinationRule and VirtualService exist and sends
	// canaryWeight percent (0-100) to the canary subset.
	Route(ctx context.Context, app *v1.CanaryApp, canaryWeight int32) error
}

// Subset names in the DestinationRule, one per track.
const (
	SubsetPrimary = string(workload.TrackPrimary)
	SubsetCanary  = string(workload.TrackCanary)
)

// DestinationRuleName is the name of the app's DestinationRule.
func DestinationRuleName(app *v1.CanaryApp) string { return app.Name }

// VirtualServiceName is the name of the app's VirtualService.
func VirtualServiceName(app *v1.CanaryApp) string { return app.Name }

// Istio routes with an Istio DestinationRule and VirtualService, written
// with server-side apply (package apply): it never changes such objects when
// a person created them, and applying the same weight again changes nothing.
type Istio struct {
	c client.Client
}

var _ Router = (*Istio)(nil)

// NewIstio returns a router writing through c. c's scheme must know
// CanaryApp; see package apply about which client to pass.
func NewIstio(c client.Client) *Istio { return &Istio{c: c} }

// Route implements Router. The DestinationRule is applied first, so that the
// VirtualService never names a subset Istio does not know.
func (r *Istio) Route(ctx context.Context, app *v1.CanaryApp, canaryWeight int32) error {
	if canaryWeight < 0 || canaryWeight > 100 {
		return fmt.Errorf("canary weight %d of %s is not a percentage", canaryWeight, klog.KObj(app))
	}
	dr, curDR := DestinationRule(app), &istioclient.DestinationRule{}
	if !r.unchanged(ctx, app, DestinationRuleName(app), curDR, &curDR.Spec, dr.Spec, dr.Labels) {
		if err := apply.Apply(ctx, r.c, app, dr); err != nil {
			return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
		}
	}
	vs, curVS := VirtualService(app, canaryWeight), &istioclient.VirtualService{}
	if !r.unchanged(ctx, app, VirtualServiceName(app), curVS, &curVS.Spec, vs.Spec, vs.Labels) {
		if err := apply.Apply(ctx, r.c, app, vs); err != nil {
			return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
		}
		ctrl.LoggerFrom(ctx).V(4).Info("Routed traffic", "canaryApp", klog.KObj(app), "canaryWeight", canaryWeight)
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

// VirtualService is the app's VirtualService sending canaryWeight percent
// to the canary subset and the rest to the primary subset. canaryWeight
// must be within 0-100.
func VirtualService(app *v1.CanaryApp, canaryWeight int32) *istionetworkingac.VirtualServiceApplyConfiguration {
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
	vs := istionetworkingac.VirtualService(VirtualServiceName(app), app.Namespace).
		WithLabels(workload.Labels(app))
	var gateways []string
	if len(app.Spec.Gateways) > 0 {
		// Naming gateways replaces Istio's default "mesh": add it back so
		// that traffic inside the mesh is split too.
		gateways = append(slices.Clone(app.Spec.Gateways), "mesh")
	}
	vs.Spec = &istionetworking.VirtualService{
		Hosts:    append([]string{host}, app.Spec.Hosts...),
		Gateways: gateways,
		Http: []*istionetworking.HTTPRoute{{
			Name: host,
			Route: []*istionetworking.HTTPRouteDestination{
				dest(SubsetPrimary, 100-canaryWeight),
				dest(SubsetCanary, canaryWeight),
			},
		}},
	}
	return vs
}

// CanaryWeight reads the canary subset's weight from a VirtualService built
// by this package. ok is false when vs has no route to the canary subset.
func CanaryWeight(vs *istionetworking.VirtualService) (weight int32, ok bool) {
	for _, route := range vs.GetHttp() {
		for _, d := range route.GetRoute() {
			if d.GetDestination().GetSubset() == SubsetCanary {
				return d.GetWeight(), true
			}
		}
	}
	return 0, false
}
