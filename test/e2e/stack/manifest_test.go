package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func TestDemoManifest(t *testing.T) {
	root, err := ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DemoManifest(root, "e2e-x", "team", "http://127.0.0.1:9090", Short{Interval: "5s", CheckInterval: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := ParseCanaryApp(m)
	if err != nil {
		t.Fatalf("%v\n%s", err, m)
	}
	if app.Name != "e2e-x" || app.Namespace != "team" {
		t.Errorf("object %s/%s, want team/e2e-x", app.Namespace, app.Name)
	}
	if !strings.Contains(app.Spec.PrometheusQuery, `destination_service_name="e2e-x"`) {
		t.Errorf("query %q does not count the app's own Service", app.Spec.PrometheusQuery)
	}
	if app.Spec.PrometheusURL != "http://127.0.0.1:9090" || app.Spec.GitOps == nil || app.Spec.Analysis == nil ||
		app.Spec.Analysis.Interval.Duration.String() != "5s" || app.Spec.Analysis.CheckInterval.Duration.String() != "1s" {
		t.Errorf("spec %+v lacks the local Prometheus, short analysis or gitops", app.Spec)
	}
	if app.Spec.Image != Image("v1") {
		t.Errorf("image %s, want the sample's %s", app.Spec.Image, Image("v1"))
	}
}

func TestTenantManifest(t *testing.T) {
	root, err := ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := TenantManifest(root, "payments", "team-b", "http://127.0.0.1:9090", Short{Interval: "5s", CheckInterval: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := ParseCanaryApp(m)
	if err != nil {
		t.Fatalf("%v\n%s", err, m)
	}
	if app.Name != "payments" || app.Namespace != "" {
		t.Errorf("object %q/%q, want payments without a namespace", app.Namespace, app.Name)
	}
	if want := `destination_service_namespace="team-b",destination_service_name="payments"`; !strings.Contains(app.Spec.PrometheusQuery, want) {
		t.Errorf("query %q does not count only team-b's Service (%s)", app.Spec.PrometheusQuery, want)
	}
	if _, err := SetImage(m, Image("v2")); err != nil {
		t.Errorf("SetImage on the tenant manifest: %v", err)
	}
}

func TestSetImageAndNamespace(t *testing.T) {
	in := []byte("metadata:\n  name: a\n  namespace: default\nspec:\n  image: x:v1  \n  failedImages:\n  - image: x:v3\n    reason: bad\n")
	out, err := SetImage(in, "x:v2")
	if err != nil {
		t.Fatal(err)
	}
	if out, err = SetNamespace(out, "other"); err != nil {
		t.Fatal(err)
	}
	want := "metadata:\n  name: a\n  namespace: other\nspec:\n  image: x:v2\n  failedImages:\n  - image: x:v3\n    reason: bad\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if _, err := SetImage([]byte("spec:\n  replicas: 1\n"), "x:v2"); err == nil {
		t.Error("SetImage of a manifest without spec.image succeeded")
	}
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{
		"atzedevries/go-status-code-server:v2": ":v2",
		"localhost:5000/app":                   "localhost:5000/app",
		"localhost:5000/app:v1":                ":v1",
		"app":                                  "app",
	} {
		if got := Tag(in); got != want {
			t.Errorf("Tag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("E2E_ENV", filepath.Join(dir, "env"))
	if _, err := LoadEnv(); err == nil || !strings.Contains(err.Error(), "not up") {
		t.Errorf("LoadEnv without a file: %v, want the stack-not-up error", err)
	}
	var b strings.Builder
	for _, k := range required {
		b.WriteString(k + "=v=" + k + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte("# comment\n\n"+b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	// Split on the first '=' only.
	if got := env.Get("GIT_TOKEN"); got != "v=GIT_TOKEN" {
		t.Errorf("GIT_TOKEN = %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte("E2E_DIR=/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnv(); err == nil || !strings.Contains(err.Error(), "GIT_URL") {
		t.Errorf("LoadEnv of an incomplete file: %v, want the missing keys named", err)
	}
}

func TestApprovalEdits(t *testing.T) {
	root, err := ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DemoManifest(root, "web", "shop", "http://127.0.0.1:9090", Short{Interval: "5s", CheckInterval: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err = SetManualApproval(m); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{Image("v2"), Image("v3")} { // set, then replaced
		if m, err = SetApprovedImage(m, img); err != nil {
			t.Fatalf("%v\n%s", err, m)
		}
	}
	a, err := ParseCanaryApp(m)
	if err != nil || a.Spec.Analysis.Approval != v1.ApprovalManual || a.Spec.ApprovedImage != Image("v3") || a.Spec.Image != Image("v1") ||
		strings.Count(string(m), "approvedImage") != 1 {
		t.Errorf("edited manifest %v:\n%s", err, m)
	}
	if _, err := SetManualApproval([]byte("apiVersion: canary.atze.io/v1\nkind: CanaryApp\nspec:\n  image: x\n")); err == nil {
		t.Error("a manifest without spec.analysis was edited")
	}
}
