package routers

import (
	"flag"
	"io"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// TestRegistry: every router is registered once, its kinds are in the
// scheme AddToScheme builds, and Select refuses unknown names.
func TestRegistry(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"istio", "gatewayapi"}) {
		t.Errorf("Names() = %v", got)
	}
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, obj := range Owned(All()) {
		if _, err := apiutil.GVKForObject(obj, s); err != nil {
			t.Errorf("%T not in the scheme: %v", obj, err)
		}
	}
	got, err := Select([]v1.TrafficProvider{v1.TrafficGatewayAPI})
	if err != nil || len(got) != 1 || got[0].Name != v1.TrafficGatewayAPI {
		t.Errorf("Select(gatewayapi) = %v, %v", got, err)
	}
	if _, err := Select([]v1.TrafficProvider{"linkerd"}); err == nil {
		t.Error("Select(linkerd) did not fail")
	}
}

// TestFlag: --traffic-routers defaults to istio and takes known names only.
func TestFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		ok   bool
	}{
		{nil, "istio", true},
		{[]string{"--traffic-routers=istio,gatewayapi"}, "istio,gatewayapi", true},
		{[]string{"--traffic-routers= gatewayapi ,gatewayapi"}, "gatewayapi", true},
		{[]string{"--traffic-routers=linkerd"}, "", false},
		{[]string{"--traffic-routers=,"}, "", false},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := Flag{Names: Default}
		fs.Var(&f, "traffic-routers", FlagUsage)
		err := fs.Parse(tc.args)
		if (err == nil) != tc.ok || tc.ok && f.String() != tc.want {
			t.Errorf("%v: %q, %v; want %q ok=%v", tc.args, f.String(), err, tc.want, tc.ok)
		}
	}
}
