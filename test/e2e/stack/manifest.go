package stack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// SampleName is the name of the original README's app.
const SampleName = "canaryapp-sample"

// SampleDir is the demo app's folder in this project and in the Git repo
// (the path argocd/application.yaml syncs).
const SampleDir = "examples/gitops/canaryapp-sample"

// Image returns the original demo image with tag (v1, v2, v3: v3 answers 500
// on /nothello in the traffic simulator).
func Image(tag string) string { return "atzedevries/go-status-code-server:" + tag }

// Short settings make a canary take about half a minute instead of minutes.
type Short struct {
	Interval      string // analysis.interval, e.g. "5s"
	CheckInterval string // analysis.checkInterval, e.g. "1s"
}

// DemoManifest is the original demo manifest (examples/gitops/canaryapp-sample
// /canaryapp.yaml in the project) made to run here: named name in namespace
// ns (its query then counts that Service's answers), asking promURL, with
// short analysis intervals and write-back to Git (spec.gitops: {}, so the
// repository and path come from the Argo CD Application).
func DemoManifest(root, name, ns, promURL string, s Short) ([]byte, error) {
	orig, err := os.ReadFile(filepath.Join(root, SampleDir, "canaryapp.yaml"))
	if err != nil {
		return nil, err
	}
	// The original's header comment is about the original; keep the object.
	body := orig[bytes.Index(orig, []byte("apiVersion:")):]
	out := strings.ReplaceAll(string(body), SampleName, name)
	var n int
	out, n = replaceLine(out, `(?m)^  namespace: .*$`, "  namespace: "+ns)
	if n != 1 {
		return nil, fmt.Errorf("the sample manifest has %d metadata.namespace lines, want 1", n)
	}
	out, n = replaceLine(out, `(?m)^  prometheusURL: .*$`, fmt.Sprintf("  prometheusURL: %q", promURL))
	if n != 1 {
		return nil, fmt.Errorf("the sample manifest has %d prometheusURL lines, want 1", n)
	}
	out = "# " + name + ": the app of canaryop's README, released by editing spec.image in Git.\n" + out +
		"  # Short intervals for the local demo (defaults: 30s per step, a check every 2s).\n" +
		"  analysis:\n" +
		"    interval: " + s.Interval + "\n" +
		"    checkInterval: " + s.CheckInterval + "\n" +
		"  # canaryop commits each outcome back here; repository, branch and path\n" +
		"  # come from the Argo CD Application that syncs this file.\n" +
		"  gitops: {}\n"
	return []byte(out), nil
}

// TenantManifest is DemoManifest the way a team on a shared cluster keeps
// it: without metadata.namespace (the Argo CD Application's destination
// namespace places it, the usual pattern), and with a query that counts
// only the Service in namespace ns, not a same-named one of another team.
func TenantManifest(root, name, ns, promURL string, s Short) ([]byte, error) {
	m, err := DemoManifest(root, name, ns, promURL, s)
	if err != nil {
		return nil, err
	}
	out, n := replaceLine(string(m), `(?m)^  namespace: .*\n`, "")
	if n != 1 {
		return nil, fmt.Errorf("the demo manifest has %d metadata.namespace lines, want 1", n)
	}
	svc := fmt.Sprintf(`destination_service_name=\"%s\"`, name)
	if strings.Count(out, svc) != 1 {
		return nil, fmt.Errorf("the demo manifest's query does not name %s once", svc)
	}
	out = strings.Replace(out, svc, fmt.Sprintf(`destination_service_namespace=\"%s\",`, ns)+svc, 1)
	return []byte(out), nil
}

// Kustomization is the app folder's kustomization.yaml.
const Kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - canaryapp.yaml\n"

// SetImage edits spec.image in a manifest in place, keeping everything else.
func SetImage(manifest []byte, image string) ([]byte, error) {
	out, n := replaceLine(string(manifest), `(?m)^  image: .*$`, "  image: "+image)
	if n != 1 {
		return nil, fmt.Errorf("manifest has %d spec.image lines, want 1", n)
	}
	return []byte(out), nil
}

// SetNamespace edits metadata.namespace in a manifest in place.
func SetNamespace(manifest []byte, ns string) ([]byte, error) {
	out, n := replaceLine(string(manifest), `(?m)^  namespace: .*$`, "  namespace: "+ns)
	if n != 1 {
		return nil, fmt.Errorf("manifest has %d metadata.namespace lines, want 1", n)
	}
	return []byte(out), nil
}

func replaceLine(s, pattern, line string) (string, int) {
	re := regexp.MustCompile(pattern)
	n := len(re.FindAllStringIndex(s, -1))
	return re.ReplaceAllLiteralString(s, line), n
}

// ParseCanaryApp reads a CanaryApp manifest (as Git holds it).
func ParseCanaryApp(manifest []byte) (*v1.CanaryApp, error) {
	app := &v1.CanaryApp{}
	if err := yaml.UnmarshalStrict(manifest, app); err != nil {
		return nil, fmt.Errorf("parsing the CanaryApp manifest: %w", err)
	}
	return app, nil
}

// FailedImage returns the spec.failedImages entry for image, nil when none.
func FailedImage(app *v1.CanaryApp, image string) *v1.FailedImage {
	for i := range app.Spec.FailedImages {
		if app.Spec.FailedImages[i].Image == image {
			return &app.Spec.FailedImages[i]
		}
	}
	return nil
}
