package charts_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestRelease runs make release's script into a temporary folder: the
// install manifest pins the image by tag and digest, and the packaged chart
// installs that same version.
func TestRelease(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	const digest = "sha256:89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	for name, tc := range map[string]struct{ digest, wantDigest string }{
		"placeholder": {"", "sha256:" + strings.Repeat("0", 64)},
		"pushed":      {digest, digest},
	} {
		t.Run(name, func(t *testing.T) {
			dist := t.TempDir()
			cmd := exec.Command(filepath.Join(root, "hack", "release.sh"))
			cmd.Env = append(os.Environ(), "VERSION="+meta.AppVersion, "DIGEST="+tc.digest, "DIST="+dist, "HELM="+helmBin(t),
				"PLUGIN_PLATFORMS="+runtime.GOOS+"/"+runtime.GOARCH)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("hack/release.sh: %v\n%s", err, out)
			}
			install, err := os.ReadFile(filepath.Join(dist, "install.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, string(install))
			wantImage := "ghcr.io/atzedevries/canaryop:" + meta.AppVersion + "@" + tc.wantDigest
			if got := managerImage(t, objs); got != wantImage {
				t.Errorf("install.yaml runs %q, want %q", got, wantImage)
			}
			if k := kinds(objs); k["CustomResourceDefinition"] != 1 || k["Namespace"] != 1 || k["ClusterRole"] != 1 {
				t.Errorf("install.yaml holds %v", k)
			}
			pkg := filepath.Join(dist, "canaryop-"+meta.Version+".tgz")
			out, errOut, err := helm(t, "template", release, pkg, "--namespace", namespace, "--include-crds")
			if err != nil {
				t.Fatalf("helm template %s: %v\n%s", pkg, err, errOut)
			}
			chartImage := "ghcr.io/atzedevries/canaryop:" + meta.AppVersion
			if tc.digest != "" {
				chartImage += "@" + tc.digest
			}
			if got := managerImage(t, decode(t, out)); got != chartImage {
				t.Errorf("the packaged chart runs %q, want %q", got, chartImage)
			}
			plugin := "kubectl-canaryapp_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
			krew, err := os.ReadFile(filepath.Join(dist, "canaryapp.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var manifest struct {
				Kind string `json:"kind"`
				Spec struct {
					Version   string `json:"version"`
					Platforms []struct {
						URI    string `json:"uri"`
						SHA256 string `json:"sha256"`
						Bin    string `json:"bin"`
					} `json:"platforms"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(krew, &manifest); err != nil {
				t.Fatalf("canaryapp.yaml: %v\n%s", err, krew)
			}
			archive, err := os.ReadFile(filepath.Join(dist, plugin))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(archive)
			if ps := manifest.Spec.Platforms; manifest.Kind != "Plugin" || manifest.Spec.Version != meta.AppVersion || len(ps) != 1 ||
				!strings.HasSuffix(ps[0].URI, "/"+meta.AppVersion+"/"+plugin) || ps[0].SHA256 != hex.EncodeToString(sum[:]) || ps[0].Bin != "kubectl-canaryapp" {
				t.Errorf("krew manifest does not name %s with its sha256:\n%s", plugin, krew)
			}
			for _, f := range []string{"SHA256SUMS", "canaryop-dashboard.json", "canaryop-prometheus-rules.yaml"} {
				if _, err := os.Stat(filepath.Join(dist, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	bad := exec.Command(filepath.Join(root, "hack", "release.sh"))
	bad.Env = append(os.Environ(), "VERSION=v99.0.0", "DIST="+t.TempDir(), "HELM="+helmBin(t))
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "the tree names another version") {
		t.Errorf("a VERSION the tree does not name: %v\n%s", err, out)
	}
}

func managerImage(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	d := must(t, objs, "Deployment", "canaryop-controller-manager")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if c := c.(map[string]any); c["name"] == "manager" {
			image, _ := c["image"].(string)
			return image
		}
	}
	t.Fatal("no manager container")
	return ""
}
