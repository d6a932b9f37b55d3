package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func TestStartInstallsCRDs(t *testing.T) {
	env, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	ns := env.NewNamespace(t)
	for _, list := range []client.ObjectList{
		&v1.CanaryAppList{},
		&istionetworkingv1.VirtualServiceList{},
		&istionetworkingv1.DestinationRuleList{},
	} {
		if err := env.Client.List(t.Context(), list, client.InNamespace(ns)); err != nil {
			t.Errorf("listing %T: %v", list, err)
		}
	}
	if other := env.NewNamespace(t); other == ns {
		t.Errorf("NewNamespace returned %q twice", ns)
	}
}

func TestBinaryDirMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	_, err := binaryDir("/nonexistent")
	if err == nil || !strings.Contains(err.Error(), "run `make envtest`") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("binaryDir() error = %v, want one naming %s and saying run `make envtest`", err, dir)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(dir, bin), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := binaryDir("/nonexistent"); err != nil || got != dir {
		t.Fatalf("binaryDir() = %q, %v, want %q", got, err, dir)
	}
}

func TestBinaryDirDefault(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "")
	root := t.TempDir()
	_, err := binaryDir(root)
	want := filepath.Join(root, "bin", "k8s", KubeVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("binaryDir() error = %v, want one naming %s", err, want)
	}
}

func TestModVersion(t *testing.T) {
	gomod := []byte(`module github.com/atzedevries/canaryop

go 1.26.0

require istio.io/client-go v1.32.0

require (
	istio.io/api v1.32.0 // indirect
	k8s.io/api v0.37.2 // indirect
)
`)
	for key, want := range map[string]string{
		"module":             modulePath,
		"istio.io/api":       "v1.32.0",
		"istio.io/client-go": "v1.32.0",
		"k8s.io/api":         "v0.37.2",
		"example.com/absent": "",
	} {
		if got := modVersion(gomod, key); got != want {
			t.Errorf("modVersion(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestIstioAPIDirFromCache(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := moduleDir(root, istioAPIPath, istioCRDFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, istioCRDFile)); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayAPICRDs: the standard channel's HTTPRoute CRD is among the
// CRDs read from the module, and the ValidatingAdmissionPolicy beside them
// is not.
func TestGatewayAPICRDs(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crds, err := loadGatewayAPICRDs(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		if c.Kind != "CustomResourceDefinition" || c.Spec.Group != gatewayAPIGroup {
			t.Errorf("loaded %s %s of group %q", c.Kind, c.Name, c.Spec.Group)
		}
		names = append(names, c.Name)
	}
	if !slices.Contains(names, "httproutes.gateway.networking.k8s.io") || !slices.Contains(names, "gateways.gateway.networking.k8s.io") {
		t.Errorf("Gateway API CRDs %v lack httproutes or gateways", names)
	}
}
