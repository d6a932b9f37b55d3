package stack

import (
	"strings"
	"testing"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// TestManifestOnGatewayAPI: the story's manifest on the gatewayapi router
// names the router and asks its query by the app label; on istio it is the
// demo manifest unchanged.
func TestManifestOnGatewayAPI(t *testing.T) {
	root, err := ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	short := Short{Interval: "5s", CheckInterval: "1s"}
	demo, err := DemoManifest(root, "e2e-gatewayapi", "default", "http://127.0.0.1:9090", short)
	if err != nil {
		t.Fatal(err)
	}
	onIstio, err := ManifestOn(root, "e2e-gatewayapi", "default", "http://127.0.0.1:9090", short, v1.TrafficIstio)
	if err != nil || string(onIstio) != string(demo) {
		t.Fatalf("ManifestOn istio differs from DemoManifest (%v)", err)
	}
	m, err := ManifestOn(root, "e2e-gatewayapi", "default", "http://127.0.0.1:9090", short, v1.TrafficGatewayAPI)
	if err != nil {
		t.Fatal(err)
	}
	app, err := ParseCanaryApp(m)
	if err != nil {
		t.Fatal(err)
	}
	if app.Spec.Provider() != v1.TrafficGatewayAPI {
		t.Errorf("provider %q, want gatewayapi", app.Spec.Provider())
	}
	if q := app.Spec.PrometheusQuery; !strings.Contains(q, `destination_app="e2e-gatewayapi"`) || strings.Contains(q, "destination_service_name") {
		t.Errorf("query %q: want it by destination_app only", q)
	}
}
