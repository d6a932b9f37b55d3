//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atzedevries/canaryop/test/e2e/stack"
)

// The chart is installed under a release and namespace of its own, so that
// its manager (whose pods kwok only pretends to run) and its cluster-wide
// RBAC never touch the operator the rest of the suite runs out of cluster.
const (
	chartRelease   = "canaryop-chart"
	chartNamespace = "canaryop-chart-e2e"
	chartManager   = chartRelease + "-controller-manager"
	helmVersion    = "v3.22.0"
)

// TestHelmChartInstalls installs charts/canaryop with helm into the stack's
// cluster: every object passes the API server's validation and admission
// (the namespace enforces the restricted Pod Security Standard, so the
// manager's pods are only created if their security context meets it), the
// manager Deployment becomes available, the ServiceAccount has exactly the
// permissions the chart means, and an upgrade to two replicas with a
// PodDisruptionBudget applies. The CRD, which the suite's operator uses, is
// validated with a server-side dry run instead of being replaced.
func TestHelmChartInstalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	e, err := stack.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	c, err := stack.NewCluster(e)
	if err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := c.Kubectl(ctx, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	helm := helmRunner(t, e)
	chart := filepath.Join(e.Root, "charts", "canaryop")

	if out, err := c.Kubectl(ctx, nil, "apply", "--dry-run=server", "-f", filepath.Join(chart, "crds")); err != nil {
		t.Fatalf("the chart's CRD: %v", err)
	} else if !strings.Contains(out, "(server dry run)") {
		t.Errorf("kubectl apply --dry-run=server: %s", out)
	}

	kubectl("create", "namespace", chartNamespace)
	t.Cleanup(func() {
		// Uninstall first (the ClusterRole and its binding are cluster-wide),
		// then the namespace; wait so the next run starts clean.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := helm(ctx, "uninstall", chartRelease, "--namespace", chartNamespace, "--wait", "--timeout", "1m"); err != nil {
			t.Errorf("helm uninstall: %v\n%s", err, out)
		}
		if _, err := c.Kubectl(ctx, nil, "delete", "namespace", chartNamespace, "--wait=true", "--timeout=90s"); err != nil {
			t.Errorf("deleting %s: %v", chartNamespace, err)
		}
	})
	kubectl("label", "namespace", chartNamespace, "pod-security.kubernetes.io/enforce=restricted")

	install := []string{chartRelease, chart, "--namespace", chartNamespace, "--skip-crds", "--wait", "--timeout", "2m",
		"--set", "image.repository=canaryop", "--set", "image.tag=e2e",
		"--set", "argocd.rbac.create=true", "--set", "argocd.namespace=" + e.Get("ARGOCD_NS"),
		"--set", "dashboard.enabled=true",
		"--set", "prometheusAllowedURLs={" + e.Get("PROM_URL") + "/}"}
	if out, err := helm(ctx, append([]string{"install"}, install...)...); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	if got := available(t, kubectl); got != 1 {
		t.Errorf("%s has %d available replicas, want 1", chartManager, got)
	}
	kubectl("-n", chartNamespace, "get", "configmap/"+chartRelease+"-dashboard", "service/"+chartRelease+"-metrics", "poddisruptionbudget/"+chartManager)

	sa := "--as=system:serviceaccount:" + chartNamespace + ":" + chartManager
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"patch", "canaryapps.canary.atze.io", "--subresource=status", "-A"}, "yes"},
		{[]string{"watch", "canaryapps.canary.atze.io", "-A"}, "yes"},
		{[]string{"update", "canaryapps.canary.atze.io", "-A"}, "no"},
		{[]string{"create", "deployments.apps", "-n", "default"}, "yes"},
		{[]string{"patch", "virtualservices.networking.istio.io", "-n", "default"}, "yes"},
		{[]string{"list", "secrets", "-n", chartNamespace}, "yes"},
		{[]string{"get", "secrets", "-n", "default"}, "no"},
		{[]string{"get", "applications.argoproj.io", "-n", e.Get("ARGOCD_NS")}, "yes"},
		{[]string{"list", "applications.argoproj.io", "-n", e.Get("ARGOCD_NS")}, "no"},
		{[]string{"update", "leases.coordination.k8s.io", "-n", chartNamespace}, "yes"},
		{[]string{"delete", "pods", "-n", "default"}, "no"},
	} {
		out, _ := c.Kubectl(ctx, nil, append([]string{"auth", "can-i", sa}, tc.args...)...)
		if got := strings.TrimSpace(out); got != tc.want {
			t.Errorf("the chart's ServiceAccount: can-i %s = %q, want %s", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	// Two replicas: leader election keeps one active, the PDB keeps one up.
	upgrade := append([]string{"upgrade"}, install...)
	upgrade = append(upgrade, "--set", "replicaCount=2", "--set", "podDisruptionBudget.minAvailable=1")
	if out, err := helm(ctx, upgrade...); err != nil {
		t.Fatalf("helm upgrade: %v\n%s", err, out)
	}
	if got := available(t, kubectl); got != 2 {
		t.Errorf("%s has %d available replicas after the upgrade, want 2", chartManager, got)
	}
	var pdb struct {
		Spec struct {
			MinAvailable any `json:"minAvailable"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(kubectl("-n", chartNamespace, "get", "poddisruptionbudget", chartManager, "-o", "json")), &pdb); err != nil {
		t.Fatal(err)
	}
	if pdb.Spec.MinAvailable != 1.0 {
		t.Errorf("PodDisruptionBudget minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
}

func available(t *testing.T, kubectl func(...string) string) int {
	t.Helper()
	var d struct {
		Status struct {
			AvailableReplicas int `json:"availableReplicas"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(kubectl("-n", chartNamespace, "get", "deployment", chartManager, "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	return d.Status.AvailableReplicas
}

// helmRunner returns a function that runs the Helm CLI against the stack's
// cluster, with Helm's own state in a temporary folder. Helm is $HELM, else
// bin/helm/<version>/helm, built by make helm when it is missing.
func helmRunner(t *testing.T, e stack.Env) func(ctx context.Context, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(e.Root, "bin", "helm", helmVersion, "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("make", "helm")
		build.Dir = e.Root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("make helm: %v\n%s", err, out)
		}
	}
	home := t.TempDir()
	return func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Get("KUBECONFIG"),
			"HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
}
