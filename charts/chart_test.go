package charts_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The CRD and the manager's ClusterRole are generated into config/ from
// markers; make manifests copies them into the chart. A stale copy fails
// here (and make verify).
func TestGeneratedFilesAreConfigs(t *testing.T) {
	root := repoRoot(t)
	for chartFile, configFile := range map[string]string{
		"crds/canary.atze.io_canaryapps.yaml": "config/crd/bases/canary.atze.io_canaryapps.yaml",
		"files/manager-role.yaml":             "config/rbac/role.yaml",
	} {
		got, err := os.ReadFile(filepath.Join(chartDir(t), chartFile))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(root, configFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/canaryop/%s differs from %s: run `make manifests`", chartFile, configFile)
		}
	}
}

// valuesFiles are the matrix of values that CI lints and renders: the
// defaults and every file in ci/.
func valuesFiles(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in charts/canaryop/ci: %v", err)
	}
	m := map[string][]string{"defaults": nil}
	for _, f := range files {
		m[strings.TrimSuffix(filepath.Base(f), ".yaml")] = []string{"--values", f}
	}
	return m
}

func TestLint(t *testing.T) {
	for name, args := range valuesFiles(t) {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := helm(t, append([]string{"lint", "--strict", chartDir(t)}, args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, errOut)
			}
			// Lint reports a template that fails only as an [INFO] line.
			if strings.Contains(errOut, "Fail:") || strings.Contains(out, "[WARNING]") {
				t.Errorf("helm lint --strict:\n%s%s", out, errOut)
			}
		})
	}
}

// TestTemplateMatrix renders each values file and checks what it must
// produce.
func TestTemplateMatrix(t *testing.T) {
	for name, args := range valuesFiles(t) {
		t.Run(name, func(t *testing.T) {
			objs := template(t, args...)
			for _, o := range objs {
				if o.GetNamespace() == "" && !slices.Contains([]string{"ClusterRole", "ClusterRoleBinding"}, o.GetKind()) {
					t.Errorf("%s %s has no namespace", o.GetKind(), o.GetName())
				}
				if o.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
					t.Errorf("%s %s lacks the chart's labels", o.GetKind(), o.GetName())
				}
			}
			switch name {
			case "defaults":
				want := map[string]int{"ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 2, "RoleBinding": 2,
					"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1}
				if got := kinds(objs); !maps.Equal(got, want) {
					t.Errorf("kinds %v, want %v", got, want)
				}
			case "full-values":
				checkFull(t, objs)
			case "minimal-values":
				if got := kinds(objs); !maps.Equal(got, map[string]int{"Deployment": 1}) {
					t.Errorf("kinds %v, want only the Deployment", got)
				}
				args := managerArgs(t, objs)
				for _, a := range []string{"--git-writeback=false"} {
					if !slices.Contains(args, a) {
						t.Errorf("args %v lack %s", args, a)
					}
				}
				for _, a := range args {
					if a == "--leader-elect" || strings.HasPrefix(a, "--prometheus-allowed-urls") {
						t.Errorf("args %v have %s", args, a)
					}
				}
				d := must(t, objs, "Deployment", "canaryop-controller-manager")
				if sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName"); sa != "platform-canaryop" {
					t.Errorf("serviceAccountName %q, want the existing platform-canaryop", sa)
				}
			default:
				t.Errorf("no expectations for ci/%s.yaml: add a case", name)
			}
		})
	}
}

func checkFull(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for kind, n := range map[string]int{"ServiceMonitor": 1, "PrometheusRule": 1, "ConfigMap": 1, "PodDisruptionBudget": 1} {
		if got := kinds(objs)[kind]; got != n {
			t.Errorf("%d %s, want %d", got, kind, n)
		}
	}
	d := must(t, objs, "Deployment", "canaryop-controller-manager")
	spec := d.Object["spec"].(map[string]any)
	if spec["replicas"] != 2.0 {
		t.Errorf("replicas %v, want 2", spec["replicas"])
	}
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	if img := c["image"]; img != "registry.example.com/platform/canaryop:v9.9.9@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("image %v, want tag and digest", img)
	}
	for _, field := range []string{"nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "priorityClassName", "imagePullSecrets"} {
		if pod[field] == nil {
			t.Errorf("pod spec lacks %s", field)
		}
	}
	mounts := map[string]string{}
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		mounts[m["name"].(string)] = m["mountPath"].(string)
	}
	if mounts["git-cache"] != "/cache" || mounts["signing-key"] != "/etc/canaryop/signing" {
		t.Errorf("mounts %v: want the cache at /cache and the signing key", mounts)
	}

	// Roles in the namespaces the flags name.
	where := map[string][]string{}
	for _, o := range objs {
		if o.GetKind() == "Role" {
			where[o.GetName()] = append(where[o.GetName()], o.GetNamespace())
		}
	}
	for name, want := range map[string][]string{
		"canaryop-leader-election-role":   {"canaryop-leases"},
		"canaryop-git-credentials-reader": {"canaryop-credentials"},
		"canaryop-application-reader":     {"gitops", "team-a-apps", "team-b-apps"},
	} {
		got := slices.Sorted(slices.Values(where[name]))
		if !slices.Equal(got, want) {
			t.Errorf("Role %s in %v, want %v", name, got, want)
		}
	}
	if cm := must(t, objs, "ConfigMap", "canaryop-dashboard"); cm.GetNamespace() != "grafana" || cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap in %q with labels %v, want grafana with the sidecar label", cm.GetNamespace(), cm.GetLabels())
	}
	sm := must(t, objs, "ServiceMonitor", "canaryop")
	if sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
	}
	svc := must(t, objs, "Service", "canaryop-metrics")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if !subset(sel, svc.GetLabels()) {
		t.Errorf("ServiceMonitor selects %v, the metrics Service has %v", sel, svc.GetLabels())
	}
}

// TestTemplateRefuses: values that would install something broken fail the
// render with a message that says what to change.
func TestTemplateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"replicas without leader election", []string{"replicaCount=2", "leaderElection.enabled=false"}, "needs leaderElection.enabled"},
		{"a PDB that blocks every drain", []string{"podDisruptionBudget.minAvailable=1"}, "would block every node drain"},
		{"a PDB without a bound", []string{"podDisruptionBudget.maxUnavailable=null"}, "set minAvailable or maxUnavailable"},
		{"a digest that is not one", []string{"image.digest=latest"}, "/image/digest"},
		{"a misspelt value", []string{"replicas=2"}, "additional properties 'replicas' not allowed"},
		{"a ServiceMonitor without the Service", []string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}, "needs metrics.service.enabled"},
		{"an existing ServiceAccount without a name", []string{"serviceAccount.create=false"}, "serviceAccount.name"},
		{"an unknown log encoder", []string{"logging.encoder=xml"}, "/logging/encoder"},
		{"a flag that is not one", []string{"extraArgs[0]=leader-elect"}, "extraArgs"},
		{"a relative cache folder", []string{"gitWriteBack.cacheDir=cache"}, "cacheDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", release, chartDir(t), "--namespace", namespace}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, errOut, err := helm(t, args...)
			if err == nil {
				t.Fatalf("rendered:\n%s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("error %q does not mention %q", errOut, tc.want)
			}
		})
	}
}

// TestChartMatchesConfigDefault: `helm install canaryop -n canaryop-system`
// and `kubectl apply -k config/default` run the same manager with the same
// permissions, so the two install paths cannot drift apart.
func TestChartMatchesConfigDefault(t *testing.T) {
	config := kustomize(t, "config/default")
	// config/manager's image, as kustomize sets it.
	chart := template(t, "--set", "image.repository=canaryop", "--set", "image.tag=dev")

	compared := 0
	for _, want := range config {
		switch want.GetKind() {
		case "Namespace":
			// helm install --create-namespace; the README labels it for
			// Pod Security Admission as config/manager does.
			continue
		case "CustomResourceDefinition":
			// crds/ holds the same file (TestGeneratedFilesAreConfigs).
			continue
		}
		got := find(chart, want.GetKind(), want.GetName())
		if got == nil {
			t.Errorf("the chart has no %s %s", want.GetKind(), want.GetName())
			continue
		}
		compared++
		if got.GetNamespace() != want.GetNamespace() {
			t.Errorf("%s %s in %q, config/default: %q", want.GetKind(), want.GetName(), got.GetNamespace(), want.GetNamespace())
		}
		if !subset(want.GetLabels(), got.GetLabels()) {
			t.Errorf("%s %s labels %v lack config/default's %v", want.GetKind(), want.GetName(), got.GetLabels(), want.GetLabels())
		}
		switch want.GetKind() {
		case "Deployment":
			compareDeployment(t, got, want)
		case "Service":
			sameFields(t, got, want, "spec", "ports")
			sameFields(t, got, want, "spec", "type")
			gotSel, _, _ := unstructured.NestedStringMap(got.Object, "spec", "selector")
			wantSel, _, _ := unstructured.NestedStringMap(want.Object, "spec", "selector")
			if !subset(wantSel, gotSel) {
				t.Errorf("Service selector %v lacks %v", gotSel, wantSel)
			}
		case "ClusterRole", "Role":
			sameFields(t, got, want, "rules")
		case "ClusterRoleBinding", "RoleBinding":
			sameFields(t, got, want, "roleRef")
			sameFields(t, got, want, "subjects")
		case "ServiceAccount":
		default:
			t.Errorf("config/default renders a %s the comparison does not know", want.GetKind())
		}
	}
	if compared < 9 {
		t.Errorf("compared %d objects; config/default renders %d", compared, len(config))
	}
	// Nothing beyond config/default but the PodDisruptionBudget.
	for _, o := range chart {
		if find(config, o.GetKind(), o.GetName()) == nil && o.GetKind() != "PodDisruptionBudget" {
			t.Errorf("the chart renders %s %s, which config/default does not", o.GetKind(), o.GetName())
		}
	}
}

func compareDeployment(t *testing.T, got, want *unstructured.Unstructured) {
	t.Helper()
	wantPod, _, _ := unstructured.NestedMap(want.Object, "spec", "template", "spec")
	gotPod, _, _ := unstructured.NestedMap(got.Object, "spec", "template", "spec")
	// The API server defaults imagePullPolicy to IfNotPresent for a tag
	// other than latest: the same as the chart's explicit default.
	for _, c := range wantPod["containers"].([]any) {
		c := c.(map[string]any)
		if _, ok := c["imagePullPolicy"]; !ok {
			c["imagePullPolicy"] = "IfNotPresent"
		}
	}
	if g, w := canonical(t, gotPod), canonical(t, wantPod); g != w {
		t.Errorf("the chart's manager pod differs from config/default's:\nchart:  %s\nconfig: %s", g, w)
	}
	sameFields(t, got, want, "spec", "replicas")
	sameFields(t, got, want, "spec", "template", "metadata", "annotations")
	for _, path := range [][]string{{"spec", "selector", "matchLabels"}, {"spec", "template", "metadata", "labels"}} {
		g, _, _ := unstructured.NestedStringMap(got.Object, path...)
		w, _, _ := unstructured.NestedStringMap(want.Object, path...)
		if !subset(w, g) {
			t.Errorf("Deployment %v: %v lacks config/default's %v", path, g, w)
		}
	}
}

// TestArgoCDReaderRoleMatchesArgoCDFolder: argocd.rbac.create renders
// argocd/operator-rbac.yaml.
func TestArgoCDReaderRoleMatchesArgoCDFolder(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "argocd", "operator-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := decode(t, string(data))
	chart := template(t, "--set", "argocd.rbac.create=true")
	if len(want) != 2 {
		t.Fatalf("argocd/operator-rbac.yaml has %d objects, want a Role and a RoleBinding", len(want))
	}
	for _, w := range want {
		g := find(chart, w.GetKind(), w.GetName())
		if g == nil {
			t.Errorf("the chart has no %s %s with argocd.rbac.create", w.GetKind(), w.GetName())
			continue
		}
		if g.GetNamespace() != w.GetNamespace() {
			t.Errorf("%s %s in %q, want %q", w.GetKind(), w.GetName(), g.GetNamespace(), w.GetNamespace())
		}
		for _, f := range []string{"rules", "roleRef", "subjects"} {
			sameFields(t, g, w, f)
		}
	}
}

// TestEveryOperatorFlagIsAValue builds the manager, reads its flags from
// -help, and renders the values matrix: every flag is passed by one of the
// values files (the chart exposes it), and every flag passed exists.
func TestEveryOperatorFlagIsAValue(t *testing.T) {
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, "./cmd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd: %v\n%s", err, out)
	}
	help, _ := exec.Command(bin, "-help").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 20 || !flags["git-writeback"] {
		t.Fatalf("read %d flags from the manager's -help:\n%s", len(flags), help)
	}
	passed := map[string]bool{}
	for _, args := range valuesFiles(t) {
		for _, a := range managerArgs(t, template(t, args...)) {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !flags[name] {
				t.Errorf("the chart passes %s, which the manager does not know", a)
			}
			passed[name] = true
		}
	}
	for name := range flags {
		// In a cluster the manager uses its ServiceAccount, not a kubeconfig.
		if !passed[name] && name != "kubeconfig" {
			t.Errorf("--%s is no value of the chart (passed with none of the values files in ci/)", name)
		}
	}
}

// TestPrometheusRuleAndDashboardAreTheFiles: the chart's PrometheusRule is
// the rule file promtool checks, its ConfigMap the generated dashboard.
func TestPrometheusRuleAndDashboardAreTheFiles(t *testing.T) {
	objs := template(t, "--set", "prometheusRule.enabled=true", "--set", "dashboard.enabled=true")
	rule := must(t, objs, "PrometheusRule", "canaryop")
	data, err := os.ReadFile(filepath.Join(chartDir(t), "files", "prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if g, w := canonical(t, rule.Object["spec"]), canonical(t, file); g != w {
		t.Errorf("PrometheusRule spec differs from files/prometheus-rules.yaml:\n%s\n%s", g, w)
	}
	cm := must(t, objs, "ConfigMap", "canaryop-dashboard")
	dashboard, err := os.ReadFile(filepath.Join(chartDir(t), "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(cm.Object, "data", "canaryop.json"); got != strings.TrimRight(string(dashboard), "\n") {
		t.Errorf("the dashboard ConfigMap does not hold files/dashboard.json")
	}
	if !json.Valid(dashboard) {
		t.Error("files/dashboard.json is not JSON")
	}
}

func sameFields(t *testing.T, got, want *unstructured.Unstructured, path ...string) {
	t.Helper()
	g, _, _ := unstructured.NestedFieldNoCopy(got.Object, path...)
	w, _, _ := unstructured.NestedFieldNoCopy(want.Object, path...)
	if cg, cw := canonical(t, g), canonical(t, w); cg != cw {
		t.Errorf("%s %s %s:\nchart:  %s\nconfig: %s", want.GetKind(), want.GetName(), strings.Join(path, "."), cg, cw)
	}
}

// canonical is JSON with sorted keys and one number type, whichever decoder
// produced v.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

func subset(small, big map[string]string) bool {
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return true
}
