// Package routers is the registry of canaryop's traffic routers: the one
// place that names every implementation of traffic.Router. cmd/ and the
// envtest suites build routers only through it (via controllers.New).
//
// A new router is a package with a traffic.Provider (its scheme, the kinds
// it owns, its constructor, its RBAC markers) and one line in all below.
package routers

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/traffic"
	"github.com/atzedevries/canaryop/internal/traffic/gatewayapi"
)

// all are the routers canaryop has, by spec.traffic.provider.
var all = []traffic.Provider{
	traffic.IstioProvider,
	gatewayapi.Provider,
}

// All returns every registered router.
func All() []traffic.Provider { return slices.Clone(all) }

// Default are the routers an operator runs unless told otherwise
// (--traffic-routers): Istio only, so that an operator on a cluster without
// the Gateway API CRDs starts as before.
var Default = []v1.TrafficProvider{v1.TrafficIstio}

// Select returns the registered routers of names, in registration order.
// An unknown name is an error, never ignored.
func Select(names []v1.TrafficProvider) ([]traffic.Provider, error) {
	var out []traffic.Provider
	for _, n := range names {
		if !slices.ContainsFunc(all, func(p traffic.Provider) bool { return p.Name == n }) {
			return nil, fmt.Errorf("unknown traffic router %q (known: %s)", n, strings.Join(Names(), ", "))
		}
	}
	for _, p := range all {
		if slices.Contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Names are the names of every registered router.
func Names() []string {
	out := make([]string, len(all))
	for i, p := range all {
		out[i] = string(p.Name)
	}
	return out
}

// AddToScheme adds the kinds of every registered router, enabled or not:
// a kind in the scheme costs nothing until something reads it.
func AddToScheme(s *runtime.Scheme) error {
	for _, p := range all {
		if err := p.AddToScheme(s); err != nil {
			return fmt.Errorf("adding the %s router's kinds: %w", p.Name, err)
		}
	}
	return nil
}

// Owned returns an empty object of each kind the given routers own.
func Owned(providers []traffic.Provider) []client.Object {
	var out []client.Object
	for _, p := range providers {
		out = append(out, p.Owns()...)
	}
	return out
}

// Flag is the value of --traffic-routers: comma-separated router names.
type Flag struct {
	Names []v1.TrafficProvider
}

// FlagUsage describes the flag.
var FlagUsage = "Comma-separated traffic routers to run (" + strings.Join(Names(), ", ") +
	"); a CanaryApp whose spec.traffic.provider names another is stalled with reason RouterNotEnabled. " +
	"Each router needs its CRDs in the cluster (gatewayapi: Gateway API's HTTPRoute)."

func (f *Flag) String() string {
	names := f.Names
	if names == nil {
		names = Default
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(n)
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value.
func (f *Flag) Set(s string) error {
	var names []v1.TrafficProvider
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" && !slices.Contains(names, v1.TrafficProvider(part)) {
			names = append(names, v1.TrafficProvider(part))
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("name at least one traffic router (%s)", strings.Join(Names(), ", "))
	}
	if _, err := Select(names); err != nil {
		return err
	}
	f.Names = names
	return nil
}
