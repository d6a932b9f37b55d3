package argocd_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/argocd"
)

func readObject(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := argocd.Files.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return u
}

func str(t *testing.T, u *unstructured.Unstructured, path ...string) string {
	t.Helper()
	s, _, err := unstructured.NestedString(u.Object, path...)
	if err != nil {
		t.Fatalf("%s %v: %v", u.GetName(), path, err)
	}
	return s
}

func list(t *testing.T, u *unstructured.Unstructured, path ...string) ([]any, bool) {
	t.Helper()
	l, found, err := unstructured.NestedSlice(u.Object, path...)
	if err != nil {
		t.Fatalf("%s %v: %v", u.GetName(), path, err)
	}
	return l, found
}

// repoRoot is the checkout: go test runs in argocd/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", root, err)
	}
	return root
}

func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

func TestConfigMapPatchHoldsTheHealthScript(t *testing.T) {
	data, err := argocd.Files.ReadFile("argocd-cm-patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(data, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Kind != "ConfigMap" || cm.Name != "argocd-cm" || cm.Namespace != "argocd" {
		t.Errorf("patch targets %s %s/%s, want ConfigMap argocd/argocd-cm", cm.Kind, cm.Namespace, cm.Name)
	}
	if cm.Labels["app.kubernetes.io/part-of"] != "argocd" {
		t.Error("argocd-cm must keep the label app.kubernetes.io/part-of=argocd, or Argo CD ignores it")
	}
	if got := cm.Data[argocd.HealthCheckKey]; got != argocd.HealthLua {
		t.Errorf("argocd-cm-patch.yaml's %s differs from health-canaryapp.lua:\n%s", argocd.HealthCheckKey, got)
	}
	if len(cm.Data) != 2 {
		t.Errorf("the patch changes other argocd-cm keys too: %v", cm.Data)
	}
	if argocd.HealthCheckKey != "resource.customizations.health."+v1.GroupVersion.Group+"_CanaryApp" {
		t.Errorf("HealthCheckKey %q does not name the CanaryApp group and kind", argocd.HealthCheckKey)
	}
}

func TestProjectAdmitsOnlyCanaryApps(t *testing.T) {
	p := readObject(t, "appproject.yaml")
	if p.GetKind() != "AppProject" || p.GetAPIVersion() != "argoproj.io/v1alpha1" || p.GetName() != "canaryapps" || p.GetNamespace() != "argocd" {
		t.Fatalf("appproject.yaml is %s %s %s/%s", p.GetAPIVersion(), p.GetKind(), p.GetNamespace(), p.GetName())
	}
	repos, _, _ := unstructured.NestedStringSlice(p.Object, "spec", "sourceRepos")
	if !slices.Equal(repos, []string{argocd.RepoURLPlaceholder}) {
		t.Errorf("sourceRepos = %v, want only %s", repos, argocd.RepoURLPlaceholder)
	}
	dests, _ := list(t, p, "spec", "destinations")
	want := map[string]any{"server": argocd.InClusterServer, "namespace": "default"}
	if len(dests) != 1 || !equalMaps(dests[0], want) {
		t.Errorf("destinations = %v, want only %v", dests, want)
	}
	cluster, found := list(t, p, "spec", "clusterResourceWhitelist")
	if !found || len(cluster) != 0 {
		t.Errorf("clusterResourceWhitelist = %v (set: %v), want an explicit empty list", cluster, found)
	}
	ns, _ := list(t, p, "spec", "namespaceResourceWhitelist")
	wantKind := map[string]any{"group": v1.GroupVersion.Group, "kind": "CanaryApp"}
	if len(ns) != 1 || !equalMaps(ns[0], wantKind) {
		t.Errorf("namespaceResourceWhitelist = %v, want only %v", ns, wantKind)
	}
	for _, field := range []string{"namespaceResourceBlacklist", "clusterResourceBlacklist", "sourceNamespaces", "roles"} {
		if _, found := p.Object["spec"].(map[string]any)[field]; found {
			t.Errorf("spec.%s is set; the project's limits are the whitelists", field)
		}
	}
}

func equalMaps(got any, want map[string]any) bool {
	m, ok := got.(map[string]any)
	if !ok || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}

func TestApplicationSyncsTheDemoAppWithinItsProject(t *testing.T) {
	root := repoRoot(t)
	p := readObject(t, "appproject.yaml")
	a := readObject(t, "application.yaml")
	if a.GetKind() != "Application" || a.GetNamespace() != "argocd" || a.GetName() != "canaryapp-sample" {
		t.Fatalf("application.yaml is %s %s/%s", a.GetKind(), a.GetNamespace(), a.GetName())
	}
	if got := str(t, a, "spec", "project"); got != p.GetName() {
		t.Errorf("project = %q, want %q", got, p.GetName())
	}
	if got := str(t, a, "spec", "source", "repoURL"); got != argocd.RepoURLPlaceholder {
		t.Errorf("repoURL = %q, want the placeholder the project allows", got)
	}
	// The operator writes back to the branch named here.
	if got := str(t, a, "spec", "source", "targetRevision"); got != "main" {
		t.Errorf("targetRevision = %q, want the branch main", got)
	}
	if got, want := str(t, a, "spec", "destination", "server"), argocd.InClusterServer; got != want {
		t.Errorf("destination server = %q, want %q", got, want)
	}
	dest := str(t, a, "spec", "destination", "namespace")
	if dest != "default" {
		t.Errorf("destination namespace = %q, want default", dest)
	}
	for _, f := range []string{"prune", "selfHeal"} {
		if on, _, _ := unstructured.NestedBool(a.Object, "spec", "syncPolicy", "automated", f); !on {
			t.Errorf("syncPolicy.automated.%s is not true", f)
		}
	}

	// What Argo CD would render from the app folder stays inside the project.
	path := str(t, a, "spec", "source", "path")
	objs := render(t, filepath.Join(root, filepath.FromSlash(path)))
	if len(objs) == 0 {
		t.Fatalf("%s renders nothing", path)
	}
	for _, o := range objs {
		if o.GroupVersionKind().Group != v1.GroupVersion.Group || o.GetKind() != "CanaryApp" {
			t.Errorf("%s renders %s %s, which the project refuses", path, o.GetAPIVersion(), o.GetKind())
		}
		if ns := o.GetNamespace(); ns != "" && ns != dest {
			t.Errorf("%s renders %s in namespace %q, outside the destination %q", path, o.GetName(), ns, dest)
		}
	}
}

// TestOperatorApplicationInstallsAReleasedChart: the operator's Application
// names a release tag, not a branch, and the chart of this tree carries that
// version, so the tag holds a chart whose image is the released one.
func TestOperatorApplicationInstallsAReleasedChart(t *testing.T) {
	root := repoRoot(t)
	a := readObject(t, "operator-application.yaml")
	if a.GetKind() != "Application" || a.GetNamespace() != "argocd" {
		t.Fatalf("operator-application.yaml is %s in %q", a.GetKind(), a.GetNamespace())
	}
	if got := str(t, a, "spec", "project"); got == "canaryapps" {
		t.Error("the operator cannot be installed through the canaryapps project, which admits CanaryApps only")
	}
	path := str(t, a, "spec", "source", "path")
	if path != "charts/canaryop" {
		t.Errorf("path = %q, want charts/canaryop", path)
	}
	chart, err := os.ReadFile(filepath.Join(root, path, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil {
		t.Fatal(err)
	}
	rev := str(t, a, "spec", "source", "targetRevision")
	if !regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(rev) {
		t.Errorf("targetRevision = %q, want a release tag vX.Y.Z", rev)
	}
	if rev != meta.AppVersion || "v"+meta.Version != rev {
		t.Errorf("targetRevision %s, but the chart is version %s, appVersion %s: make release checks they agree", rev, meta.Version, meta.AppVersion)
	}
	// The release name gives the ServiceAccount the name operator-rbac.yaml binds.
	if got := str(t, a, "spec", "source", "helm", "releaseName"); got != "canaryop" {
		t.Errorf("helm.releaseName = %q, want canaryop", got)
	}
	if got := str(t, a, "spec", "destination", "namespace"); got != "canaryop-system" {
		t.Errorf("destination namespace = %q, want canaryop-system", got)
	}
	opts, _, _ := unstructured.NestedStringSlice(a.Object, "spec", "syncPolicy", "syncOptions")
	if !slices.Contains(opts, "CreateNamespace=true") {
		t.Errorf("syncOptions %v: the chart does not create its namespace", opts)
	}
	if got, _, _ := unstructured.NestedString(a.Object, "spec", "syncPolicy", "managedNamespaceMetadata", "labels", "pod-security.kubernetes.io/enforce"); got != "restricted" {
		t.Errorf("the namespace is not labelled for the restricted Pod Security Standard (as config/manager's is): %q", got)
	}
}

func TestKustomizationsApplyProjectAndApplication(t *testing.T) {
	root := repoRoot(t)
	// The operator may read Applications in the argocd namespace only: the
	// Role and RoleBinding come with the Argo CD integration.
	want := []string{"AppProject/canaryapps", "Application/canaryapp-sample", "Role/canaryop-application-reader", "RoleBinding/canaryop-application-reader"}
	var got []string
	for _, o := range render(t, filepath.Join(root, "argocd")) {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomize build argocd = %v, want %v", got, want)
	}

	// The original README's `kubectl apply -f examples/argocd-app`: the
	// folder holds project.yaml and app.yaml, links to the files in argocd/.
	got = nil
	for _, name := range []string{"project.yaml", "app.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "examples", "argocd-app", name))
		if err != nil {
			t.Fatal(err)
		}
		var o unstructured.Unstructured
		if err := yaml.Unmarshal(b, &o.Object); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(got)
	if want := want[:2]; !slices.Equal(got, want) {
		t.Errorf("examples/argocd-app = %v, want %v", got, want)
	}
}
