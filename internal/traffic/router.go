package traffic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/routepolicy"
)

// Router is the traffic-router seam: one implementation per
// spec.traffic.provider, each in a package of its own.
type Router interface {
	// Services are the Services the app's routes send traffic to. The
	// controller applies them, like the Deployments, before it calls
	// Route.
	Services(app *v1.CanaryApp) ([]*corev1ac.ServiceApplyConfiguration, error)
	// Route makes the app's routing objects exist and sends canaryWeight
	// percent (0-100) of the app's traffic to the canary track.
	Route(ctx context.Context, app *v1.CanaryApp, canaryWeight int32) error
}

// Retirer is a Router that can remove what it wrote for an app that now
// uses another router.
type Retirer interface {
	// Retire deletes the routing objects and Services app controls that
	// only this router uses. Objects app does not control are left alone.
	Retire(ctx context.Context, app *v1.CanaryApp) error
}

// Deps are what a router is built from.
type Deps struct {
	// Client writes and reads (cached) the router's objects; its scheme
	// must know CanaryApp and the provider's kinds.
	Client client.Client
	// APIReader reads uncached, for the rare re-read when an object about
	// to be created already exists (see apply.WithAPIReader).
	APIReader client.Reader
	// Policy is the admin's route policy (--allowed-gateways); nil allows
	// only each app's own Service.
	Policy *routepolicy.Policy
}

// Provider is one router and its footprint: what the operator's scheme,
// cache and watches need for it. RBAC comes from the kubebuilder markers
// in the router's package.
type Provider struct {
	// Name is the value of spec.traffic.provider that selects it.
	Name v1.TrafficProvider
	// AddToScheme adds the kinds the router writes and reads.
	AddToScheme func(*runtime.Scheme) error
	// Owns returns one empty object per kind the router creates, owned by
	// the CanaryApp (Services excepted: the controller owns those).
	// The controller watches them, and its cache holds only the ones
	// labelled as canaryop's.
	Owns func() []client.Object
	// New builds the router.
	New func(Deps) Router
}

// RouteNotAllowedError says that the route policy left some of
// spec.gateways, spec.hosts or spec.traffic.gatewayapi.parentRefs out. The
// routes were written without them, so traffic still shifts for everything
// allowed; a person has to change the spec or the operator's
// --allowed-gateways.
type RouteNotAllowedError struct {
	// Namespace and Name identify the CanaryApp.
	Namespace, Name string
	// Refused lists what was left out, each with the rule that refused it.
	Refused []routepolicy.Refusal
}

func (e *RouteNotAllowedError) Error() string {
	parts := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		parts[i] = r.String()
	}
	return fmt.Sprintf("the route policy does not allow %s; the routes of %s/%s carry the app without them",
		strings.Join(parts, "; "), e.Namespace, e.Name)
}

// Reason is the condition reason for this error, v1.ReasonRouteNotAllowed.
func (e *RouteNotAllowedError) Reason() string { return v1.ReasonRouteNotAllowed }

// NotEnabledError says that spec.traffic.provider names a router this
// operator does not run.
type NotEnabledError struct {
	Provider v1.TrafficProvider
	Enabled  []v1.TrafficProvider
}

func (e *NotEnabledError) Error() string {
	names := make([]string, len(e.Enabled))
	for i, p := range e.Enabled {
		names[i] = string(p)
	}
	return fmt.Sprintf("traffic.provider %q is not enabled in this operator (--traffic-routers=%s); nothing is deployed until the spec or the operator changes",
		e.Provider, strings.Join(names, ","))
}

// Reason is the condition reason for this error, v1.ReasonRouterNotEnabled.
func (e *NotEnabledError) Reason() string { return v1.ReasonRouterNotEnabled }

// Routers is the Router that hands each app to the router named by its
// spec.traffic.provider.
type Routers struct {
	names   []v1.TrafficProvider
	routers map[v1.TrafficProvider]Router
}

var _ Router = (*Routers)(nil)

// NewRouters builds one router per provider from d.
func NewRouters(d Deps, providers []Provider) *Routers {
	r := &Routers{routers: map[v1.TrafficProvider]Router{}}
	for _, p := range providers {
		r.names = append(r.names, p.Name)
		r.routers[p.Name] = p.New(d)
	}
	return r
}

func (r *Routers) routerFor(app *v1.CanaryApp) (Router, error) {
	p := app.Spec.Provider()
	if rt, ok := r.routers[p]; ok {
		return rt, nil
	}
	return nil, &NotEnabledError{Provider: p, Enabled: slices.Clone(r.names)}
}

// Services implements Router; a provider that is not enabled is a
// *NotEnabledError.
func (r *Routers) Services(app *v1.CanaryApp) ([]*corev1ac.ServiceApplyConfiguration, error) {
	rt, err := r.routerFor(app)
	if err != nil {
		return nil, err
	}
	return rt.Services(app)
}

// Route implements Router. After the app's router has routed it, the other
// routers retire what they wrote for it, so that an app moved from one
// provider to another is not routed by both.
func (r *Routers) Route(ctx context.Context, app *v1.CanaryApp, canaryWeight int32) error {
	rt, err := r.routerFor(app)
	if err != nil {
		return err
	}
	routeErr := rt.Route(ctx, app, canaryWeight)
	if _, refused := errors.AsType[*RouteNotAllowedError](routeErr); routeErr != nil && !refused {
		return routeErr
	}
	for _, name := range r.names {
		if other, ok := r.routers[name].(Retirer); ok && name != app.Spec.Provider() {
			if err := other.Retire(ctx, app); err != nil {
				return fmt.Errorf("retiring the %s routes: %w", name, err)
			}
		}
	}
	return routeErr
}
