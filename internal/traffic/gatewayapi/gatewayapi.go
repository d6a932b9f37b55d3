// Package gatewayapi splits a CanaryApp's traffic with a Gateway API
// HTTPRoute, for any implementation of Gateway API (Istio in ambient or
// sidecar mode, Envoy Gateway, Cilium, NGINX Gateway Fabric, Contour, Kong,
// GKE, ...).
//
// For a CanaryApp named N in namespace NS with spec.traffic.provider
// gatewayapi the router owns, all in NS and labelled like the workloads
// (see package workload):
//
//   - Services N-primary and N-canary, each selecting the pods of one
//     track, next to the app's Service N (which selects both and which the
//     controller keeps for every router).
//   - HTTPRoute N: mesh-internal (GAMMA) routing, with the app's own
//     Service N as its only parent. Its last rule sends 100-w percent to
//     N-primary and w percent to N-canary; rules before it send the
//     requests of spec.traffic.canaryMatch to N-canary alone.
//   - HTTPRoute N-gateways, only while the route policy (package
//     routepolicy, --allowed-gateways) allows at least one Gateway of
//     spec.traffic.gatewayapi.parentRefs: the same rules, attached to the
//     allowed Gateways, with spec.hosts (as far as allowed) as hostnames.
//
// Two HTTPRoutes, because GAMMA routes and Gateway routes must not be
// mixed in one route, and because a Gateway route's hostnames must never
// reach the mesh. A parentRef naming a Service other than N, or a Gateway
// the policy does not allow for NS, is left out and reported as a
// *traffic.RouteNotAllowedError: a tenant routes its own app only.
//
// Like the Istio router it never adopts an HTTPRoute or Service it did not
// create (package apply), and writes an HTTPRoute only when its spec or
// labels differ from what the cache holds.
package gatewayapi

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/routepolicy"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/workload"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=delete

// Provider is this router's registration (see package routers).
var Provider = traffic.Provider{
	Name:        v1.TrafficGatewayAPI,
	AddToScheme: gatewayv1.Install,
	Owns:        func() []client.Object { return []client.Object{&gatewayv1.HTTPRoute{}} },
	New: func(d traffic.Deps) traffic.Router {
		return &Router{c: d.Client, reader: d.APIReader, policy: d.Policy}
	},
}

// Router routes with HTTPRoutes; see the package doc.
type Router struct {
	c      client.Client
	reader client.Reader
	policy *routepolicy.Policy
}

var (
	_ traffic.Router  = (*Router)(nil)
	_ traffic.Retirer = (*Router)(nil)
)

// New returns a router writing through c (see traffic.Deps).
func New(d traffic.Deps) *Router { return Provider.New(d).(*Router) }

// RouteName is the name of the app's mesh (GAMMA) HTTPRoute.
func RouteName(app *v1.CanaryApp) string { return app.Name }

// GatewayRouteName is the name of the app's HTTPRoute for its allowed
// Gateways.
func GatewayRouteName(app *v1.CanaryApp) string { return app.Name + "-gateways" }

// Services implements traffic.Router: the app's Service N and the two track
// Services the HTTPRoutes' backendRefs name.
func (r *Router) Services(app *v1.CanaryApp) ([]*corev1ac.ServiceApplyConfiguration, error) {
	return []*corev1ac.ServiceApplyConfiguration{
		workload.Service(app),
		workload.TrackService(app, workload.TrackPrimary),
		workload.TrackService(app, workload.TrackCanary),
	}, nil
}

// Route implements traffic.Router. The mesh HTTPRoute is applied first, so
// that the own Service's weights move even when the Gateway one cannot be
// written. When the policy refused part of the parentRefs or spec.hosts,
// Route still writes the allowed part and then returns a
// *traffic.RouteNotAllowedError.
func (r *Router) Route(ctx context.Context, app *v1.CanaryApp, canaryWeight int32) error {
	if canaryWeight < 0 || canaryWeight > 100 {
		return fmt.Errorf("canary weight %d of %s is not a percentage", canaryWeight, klog.KObj(app))
	}
	if msgs := validation.IsDNS1035Label(workload.TrackServiceName(app, workload.TrackPrimary)); len(msgs) > 0 {
		return fmt.Errorf("%s: the Service names are no DNS-1035 labels, so nothing is routed: %s", klog.KObj(app), strings.Join(msgs, "; "))
	}
	d := Decide(r.policy, app)
	if err := r.applyRoute(ctx, app, MeshRoute(app, canaryWeight)); err != nil {
		return err
	}
	if gw := GatewayRoute(app, canaryWeight, d); gw != nil {
		if err := r.applyRoute(ctx, app, gw); err != nil {
			return err
		}
	} else if err := r.delete(ctx, app, &gatewayv1.HTTPRoute{ObjectMeta: r.meta(app, GatewayRouteName(app))}); err != nil {
		// A Gateway route left from an earlier spec or a looser policy
		// would keep routing what is no longer allowed.
		return err
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Routed traffic", "canaryApp", klog.KObj(app), "canaryWeight", canaryWeight,
		"gateways", len(d.Parents), "refused", len(d.Refused))
	if len(d.Refused) > 0 {
		return &traffic.RouteNotAllowedError{Namespace: app.Namespace, Name: app.Name, Refused: d.Refused}
	}
	return nil
}

// Retire implements traffic.Retirer: the HTTPRoutes and the track Services
// app controls. The Service N stays: every router uses it.
func (r *Router) Retire(ctx context.Context, app *v1.CanaryApp) error {
	for _, obj := range []client.Object{
		&gatewayv1.HTTPRoute{ObjectMeta: r.meta(app, GatewayRouteName(app))},
		&gatewayv1.HTTPRoute{ObjectMeta: r.meta(app, RouteName(app))},
		&corev1.Service{ObjectMeta: r.meta(app, workload.TrackServiceName(app, workload.TrackCanary))},
		&corev1.Service{ObjectMeta: r.meta(app, workload.TrackServiceName(app, workload.TrackPrimary))},
	} {
		if err := r.delete(ctx, app, obj); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) meta(app *v1.CanaryApp, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: app.Namespace, Name: name}
}

// delete deletes obj when app controls it; one app does not control is not
// ours to delete.
func (r *Router) delete(ctx context.Context, app *v1.CanaryApp, obj client.Object) error {
	if err := apply.Delete(ctx, r.c, app, obj); err != nil && !apply.IsForeignObject(err) {
		return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
	}
	return nil
}

// applyRoute applies route unless the cache shows that would change
// nothing: Route runs at every analysis check.
func (r *Router) applyRoute(ctx context.Context, app *v1.CanaryApp, route *gatewayv1.HTTPRoute) error {
	if r.unchanged(ctx, app, route) {
		return nil
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	if err != nil {
		return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
	}
	delete(u["metadata"].(map[string]any), "creationTimestamp")
	delete(u, "status")
	if err := apply.Apply(ctx, r.c, app, u, apply.WithAPIReader(r.reader)); err != nil {
		return fmt.Errorf("routing %s: %w", klog.KObj(app), err)
	}
	return nil
}

// unchanged reports whether the HTTPRoute named like want is controlled by
// app and already has want's spec (every default spelled out, see
// MeshRoute) and labels. Any drift, such as a person editing the weights,
// differs and is applied over.
func (r *Router) unchanged(ctx context.Context, app *v1.CanaryApp, want *gatewayv1.HTTPRoute) bool {
	cur := &gatewayv1.HTTPRoute{}
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(want), cur); err != nil {
		return false
	}
	if !metav1.IsControlledBy(cur, app) || !equality.Semantic.DeepEqual(cur.Spec, want.Spec) {
		return false
	}
	for k, v := range want.Labels {
		if cur.Labels[k] != v {
			return false
		}
	}
	return true
}
