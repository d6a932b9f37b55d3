// Package testenv starts a real kube-apiserver and etcd (controller-runtime
// envtest) with the CRDs canaryop works with installed: the CanaryApp CRD
// from config/crd/bases, the networking.istio.io CRDs shipped in the
// istio.io/api module and the standard-channel gateway.networking.k8s.io
// CRDs shipped in the sigs.k8s.io/gateway-api module. It is for tests only.
//
// A package's tests start one Env in TestMain and give each test its own
// namespace:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) {
//		var err error
//		if env, err = testenv.Start(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		if err := env.Stop(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
// The envtest binaries (kube-apiserver, etcd) come from $KUBEBUILDER_ASSETS,
// else from <repo>/bin/k8s/<KubeVersion>, which `make envtest` fills.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// KubeVersion is the Kubernetes version of the envtest binaries looked for
// under <repo>/bin/k8s when KUBEBUILDER_ASSETS is not set.
const KubeVersion = "v1.37.2"

const (
	modulePath   = "github.com/atzedevries/canaryop"
	istioAPIPath = "istio.io/api"
	istioCRDFile = "kubernetes/customresourcedefinitions.gen.yaml"
	istioGroup   = "networking.istio.io"

	gatewayAPIPath   = "sigs.k8s.io/gateway-api"
	gatewayAPICRDDir = "config/crd/standard"
	gatewayAPIProbe  = gatewayAPICRDDir + "/gateway.networking.k8s.io_httproutes.yaml"
	gatewayAPIGroup  = "gateway.networking.k8s.io"
)

// Scheme returns a new scheme with the client-go types, canary.atze.io/v1,
// Istio networking v1 and Gateway API v1: every kind canaryop reads or
// writes.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	utilruntime.Must(istionetworkingv1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// Env is a running API server with the CRDs installed.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a direct (uncached) client using Scheme.
	Client client.Client
	// Scheme is the scheme of Client.
	Scheme *k8sruntime.Scheme

	env *envtest.Environment
}

// Start starts kube-apiserver and etcd and installs the CRDs. Call Stop when
// done, also after a failed test, so that no process is left behind.
func Start() (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := binaryDir(root)
	if err != nil {
		return nil, err
	}
	istioCRDs, err := loadIstioCRDs(root)
	if err != nil {
		return nil, err
	}
	gatewayCRDs, err := loadGatewayAPICRDs(root)
	if err != nil {
		return nil, err
	}
	scheme := Scheme()
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		CRDs:                  append(istioCRDs, gatewayCRDs...),
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := te.Start()
	if err != nil {
		// envtest may have started etcd before the API server failed.
		_ = te.Stop()
		return nil, fmt.Errorf("starting envtest with binaries from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: te}, nil
}

// Stop stops the API server and etcd and removes their data.
func (e *Env) Stop() error {
	if err := e.env.Stop(); err != nil {
		return fmt.Errorf("stopping envtest: %w", err)
	}
	return nil
}

// NewNamespace creates a namespace with a generated name for one test and
// deletes it when the test ends. envtest runs no namespace controller, so
// the namespace stays Terminating with its objects; names never repeat, so
// tests do not see each other's objects.
func (e *Env) NewNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := e.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled during cleanup.
		if err := e.Client.Delete(context.Background(), ns); err != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// RepoRoot returns the directory of canaryop's go.mod. It walks up from
// this source file, which works from any package's tests, and from the
// working directory when the binary was built with -trimpath.
func RepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isModuleRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the go.mod of %s above %v", modulePath, starts)
}

func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && modVersion(data, "module") == modulePath
}

// binaryDir is where the envtest binaries are: $KUBEBUILDER_ASSETS, else
// <repo>/bin/k8s/<KubeVersion>. It fails when kube-apiserver or etcd is
// missing, saying how to get them.
func binaryDir(root string) (string, error) {
	dir, from := os.Getenv("KUBEBUILDER_ASSETS"), "KUBEBUILDER_ASSETS"
	if dir == "" {
		dir, from = filepath.Join(root, "bin", "k8s", KubeVersion), "the default location"
	}
	var missing []string
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("envtest binaries %s not found in %s (%s): run `make envtest`, or set KUBEBUILDER_ASSETS to a directory that has them",
			strings.Join(missing, ", "), dir, from)
	}
	return dir, nil
}

// loadIstioCRDs reads the networking.istio.io CRDs from the istio.io/api
// module this repository builds with, so that tests validate against the
// same schema as the Go types.
func loadIstioCRDs(root string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := moduleDir(root, istioAPIPath, istioCRDFile)
	if err != nil {
		return nil, err
	}
	return loadCRDs(filepath.Join(dir, istioCRDFile), istioGroup)
}

// loadGatewayAPICRDs reads the standard-channel gateway.networking.k8s.io
// CRDs from the sigs.k8s.io/gateway-api module this repository builds with.
func loadGatewayAPICRDs(root string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := moduleDir(root, gatewayAPIPath, gatewayAPIProbe)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, gatewayAPICRDDir, gatewayAPIGroup+"_*.yaml"))
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		c, err := loadCRDs(f, gatewayAPIGroup)
		if err != nil && !errors.Is(err, errNoCRDs) {
			return nil, err
		}
		crds = append(crds, c...)
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no %s CRDs in %s", gatewayAPIGroup, filepath.Join(dir, gatewayAPICRDDir))
	}
	return crds, nil
}

var errNoCRDs = errors.New("no CRDs of the group")

// loadCRDs reads the CRDs of group from a YAML stream; other documents
// (such as Gateway API's ValidatingAdmissionPolicy) are skipped.
func loadCRDs(path, group string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading CRDs: %w", err)
	}
	defer f.Close()
	var crds []*apiextensionsv1.CustomResourceDefinition
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding %s: %w", f.Name(), err)
		}
		if crd.Kind == "CustomResourceDefinition" && crd.Spec.Group == group {
			crds = append(crds, crd)
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("%w %s in %s", errNoCRDs, group, f.Name())
	}
	return crds, nil
}

// moduleDir finds module in the module cache: its version from the test
// binary's build info (or go.mod), the cache from $GOMODCACHE (or `go env
// GOMODCACHE`); probe is a file it must have. `go list -m` is the last
// resort; it also understands replace directives and workspaces.
func moduleDir(root, module, probe string) (string, error) {
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == module && d.Replace == nil {
				version = d.Version
			}
		}
	}
	if version == "" {
		if data, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
			version = modVersion(data, module)
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := goCmd(root, "env", "GOMODCACHE"); err == nil {
			cache = out
		}
	}
	if version != "" && cache != "" {
		dir := filepath.Join(cache, module+"@"+version)
		if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
			return dir, nil
		}
	}
	dir, err := goCmd(root, "list", "-m", "-f", "{{.Dir}}", module)
	if err == nil && dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("cannot find module %s (version %q) in the module cache %q: run `go mod download %s` (%v)",
		module, version, cache, module, err)
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// modVersion returns the word after key in go.mod: the module path for
// "module", the required version for a module path.
func modVersion(gomod []byte, key string) string {
	s := bufio.NewScanner(bytes.NewReader(gomod))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == key {
			return f[1]
		}
	}
	return ""
}

// AddUser creates a user known to the API server (in the given groups) and
// returns a client that acts as that user, so tests can prove what RBAC lets
// a person do.
func (e *Env) AddUser(name string, groups ...string) (client.Client, error) {
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	c, err := client.New(u.Config(), client.Options{Scheme: e.Scheme})
	if err != nil {
		return nil, fmt.Errorf("client for user %s: %w", name, err)
	}
	return c, nil
}

// Main is a package's TestMain: it starts the environment into *env, runs
// the tests and stops the environment, also when tests fail, so that no
// kube-apiserver or etcd outlives the test binary.
func Main(m *testing.M, env **Env) {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// NewApp creates a minimal valid CanaryApp in ns, so that tests have an
// owner with a UID for the objects they apply.
func (e *Env) NewApp(t testing.TB, ns, name string) *v1.CanaryApp {
	t.Helper()
	app := &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.CanaryAppSpec{
			Image:           "registry.example.com/shop:v1",
			ImageListenPort: 8080,
			Replicas:        2,
			TestReplicas:    1,
			PrometheusQuery: `increase(istio_requests_total{destination_service_name="shop",response_code=~"5.*"}[20s]) > 2`,
			PrometheusURL:   "http://prometheus.istio-system.svc:9090",
		},
	}
	if err := e.Client.Create(t.Context(), app); err != nil {
		t.Fatalf("creating CanaryApp: %v", err)
	}
	return app
}

// StartT starts an environment for one test and stops it when the test ends.
func StartT(t testing.TB) *Env {
	t.Helper()
	e, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
	})
	return e
}
