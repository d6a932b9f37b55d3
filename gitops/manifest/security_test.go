package manifest

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// These tests perform the attacks of the 2026-12 security review
// against Render and Apply. Repository content and
// CanaryApp authors are not trusted: the author may point spec.gitops at
// another team's folder, and the folder's YAML is whatever its committer
// wrote.

// unchanged fails the test when any of files differs on fsys.
func unchanged(t *testing.T, fsys filesys.FileSystem, root string, files map[string]string) {
	t.Helper()
	for p, data := range readFiles(t, fsys, root, slices.Collect(maps.Keys(files))) {
		if data != files[p] {
			t.Errorf("%s changed:\n%s", p, data)
		}
	}
}

// quiet fails the test when err's text holds any of secrets.
func quiet(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error quotes %q: %v", s, err)
		}
	}
}

const teamB = `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: payments
spec:
  image: registry.acme.io/team-b/payments:v41
  imageListenPort: 8080
`

// C1 item 3: team B's namespace-less manifest, which Argo CD applies in
// team-b, must not be the target of a CanaryApp "payments" in namespace
// evil. Before the fix Render returned team B's image to evil and Apply
// wrote evil's image into team B's file.
func TestNamespaceLessDocumentIsNotAnyNamespace(t *testing.T) {
	layouts := map[string]map[string]string{
		"plain": {"apps/team-b/payments/canaryapp.yaml": teamB},
		"kustomize": {
			"apps/team-b/payments/kustomization.yaml": "resources:\n- canaryapp.yaml\n",
			"apps/team-b/payments/canaryapp.yaml":     teamB,
		},
	}
	change := Change{Image: "evil.example/backdoor:v1", ExpectImages: []string{"registry.acme.io/team-b/payments:v41"}}
	for name, files := range layouts {
		t.Run(name, func(t *testing.T) {
			fsys := filesys.MakeFsInMemory()
			writeFiles(t, fsys, "repo", files)
			path := "repo/apps/team-b/payments"

			evil := ForApp("evil", "payments")
			r, err := Render(fsys, path, evil)
			if !errors.Is(err, ErrNamespaceNotProven) || !errors.Is(err, ErrNoDocument) {
				t.Fatalf("Render = %+v, %v; want ErrNamespaceNotProven", r, err)
			}
			for _, want := range []string{"has no metadata.namespace", "not proven"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to say %q", err, want)
				}
			}
			quiet(t, err, "registry.acme.io")
			if _, err := Apply(fsys, path, evil, change); !errors.Is(err, ErrNamespaceNotProven) {
				t.Errorf("Apply: err = %v, want ErrNamespaceNotProven", err)
			}

			// Argo CD applies the folder in team-b: the document is team
			// B's, and evil's app has none.
			proven := evil.WithDefaultNamespace("team-b")
			if _, err := Render(fsys, path, proven); !errors.Is(err, ErrNoDocument) || errors.Is(err, ErrNamespaceNotProven) {
				t.Errorf("Render with DefaultNamespace team-b: err = %v, want ErrNoDocument", err)
			}
			if _, err := Apply(fsys, path, proven, change); !errors.Is(err, ErrNoDocument) {
				t.Errorf("Apply with DefaultNamespace team-b: err = %v, want ErrNoDocument", err)
			}
			unchanged(t, fsys, "repo", files)

			// Team B's own app, with its namespace proven, still matches.
			own := ForApp("team-b", "payments").WithDefaultNamespace("team-b")
			if r, err := Render(fsys, path, own); err != nil || r.Image != "registry.acme.io/team-b/payments:v41" {
				t.Errorf("team B's own Render = %+v, %v", r, err)
			}
		})
	}
}

// A kustomization that sets the namespace proves it: the rendered
// CanaryApp is in team-b whatever the caller's DefaultNamespace.
func TestKustomizeNamespaceIsTheDocumentsNamespace(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "repo", map[string]string{
		"k/kustomization.yaml": "namespace: team-b\nresources:\n- canaryapp.yaml\n",
		"k/canaryapp.yaml":     teamB,
	})
	if _, err := Render(fsys, "repo/k", ForApp("evil", "payments").WithDefaultNamespace("evil")); !errors.Is(err, ErrNoDocument) {
		t.Errorf("evil: err = %v, want ErrNoDocument", err)
	}
	if r, err := Render(fsys, "repo/k", ForApp("team-b", "payments")); err != nil || r.Image != "registry.acme.io/team-b/payments:v41" {
		t.Errorf("team-b: %+v, %v", r, err)
	}
}
