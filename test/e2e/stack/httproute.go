package stack

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// RouteWeights reads the weights the operator routes the app by: from its
// VirtualService on the istio router, else from its HTTPRoute on the
// gatewayapi router.
func (c *Cluster) RouteWeights(ctx context.Context, ns, name string) (Weights, error) {
	w, err := c.VirtualServiceWeights(ctx, ns, name)
	if err != nil || w.Found {
		return w, err
	}
	return c.HTTPRouteWeights(ctx, ns, name)
}

// HTTPRouteWeights reads the weights of the app's HTTPRoute: the
// backendRefs "<name>-primary" and "<name>-canary" of its last (weighted)
// rule.
func (c *Cluster) HTTPRouteWeights(ctx context.Context, ns, name string) (Weights, error) {
	route := &gatewayv1.HTTPRoute{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, route); err != nil {
		if apierrors.IsNotFound(err) {
			return Weights{}, nil
		}
		return Weights{}, err
	}
	w := Weights{Found: true, Kind: "HTTPRoute"}
	if len(route.Spec.Rules) == 0 {
		return w, nil
	}
	for _, b := range route.Spec.Rules[len(route.Spec.Rules)-1].BackendRefs {
		switch string(b.Name) {
		case name + "-primary":
			w.Primary += ptr.Deref(b.Weight, 1)
		case name + "-canary":
			w.Canary += ptr.Deref(b.Weight, 1)
		}
	}
	return w, nil
}

// RouterKind is the kind that carries the weights of provider.
func RouterKind(provider v1.TrafficProvider) string {
	if provider == v1.TrafficGatewayAPI {
		return "HTTPRoute"
	}
	return "VirtualService"
}

// ManifestOn is DemoManifest on the traffic router provider. For gatewayapi
// it adds spec.traffic.provider and asks its query by destination_app (the
// pods' app label) instead of destination_service_name: a mesh reports
// Gateway API traffic under the backend Services "<name>-primary" and
// "<name>-canary", the app label stays the app's on both tracks.
func ManifestOn(root, name, ns, promURL string, s Short, provider v1.TrafficProvider) ([]byte, error) {
	m, err := DemoManifest(root, name, ns, promURL, s)
	if err != nil || provider == v1.TrafficIstio {
		return m, err
	}
	out := string(m)
	svc := fmt.Sprintf(`destination_service_name=\"%s\"`, name)
	if strings.Count(out, svc) != 1 {
		return nil, fmt.Errorf("the demo manifest's query does not name %s once", svc)
	}
	out = strings.Replace(out, svc, fmt.Sprintf(`destination_app=\"%s\"`, name), 1)
	out += "  # Routed by a Gateway API HTTPRoute instead of an Istio VirtualService.\n" +
		"  traffic:\n" +
		"    provider: " + string(provider) + "\n"
	return []byte(out), nil
}
