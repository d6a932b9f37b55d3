package manifest

import (
	"errors"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

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

const leakApp = `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: leak
  namespace: evil
spec:
  image: registry.example/app:v2
`

// laughs is the review's 450-byte CanaryApp whose nine levels of aliases
// stand for 9^9 scalars.
const laughs = `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: lol
spec:
  image: app:v1
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// H1/H4: YAML that stands for far more than it holds is refused before
// anything expands it. Before the fix the bomb under a kustomization ran the
// process out of memory after about 4 GB (kyaml DeAnchor), and the
// self-referencing alias overflowed the stack; both are fatal errors that
// kill the operator for every tenant.
func TestYAMLBombsAreRefusedCheaply(t *testing.T) {
	kust := func(app string) map[string]string {
		return map[string]string{"app/kustomization.yaml": "resources: [canaryapp.yaml]\n", "app/canaryapp.yaml": app}
	}
	cyclic := "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: lol\nspec:\n  image: app:v1\n  a: &a [1, *a]\n"
	// A block scalar holds the bomb: one string to a YAML stream reader,
	// but kyaml cuts the file at "---" lines first and parses the rest.
	hidden := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: |\n    x\n---\n" + laughs
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"alias bomb under a kustomization", kust(laughs)},
		{"alias bomb in a plain folder", map[string]string{"app/canaryapp.yaml": laughs}},
		{"alias bomb as the kustomization", map[string]string{"app/kustomization.yaml": strings.Replace(laughs, "apiVersion: canary.atze.io/v1\nkind: CanaryApp\n", "", 1), "app/canaryapp.yaml": laughs}},
		{"alias bomb in a base outside the path", map[string]string{
			"app/kustomization.yaml":  "resources: [../base]\n",
			"base/kustomization.yaml": "resources: [canaryapp.yaml]\n",
			"base/canaryapp.yaml":     laughs,
		}},
		{"alias bomb in a patch file", map[string]string{
			"app/kustomization.yaml": "resources: [canaryapp.yaml]\npatches:\n- path: p.txt\n",
			"app/canaryapp.yaml":     "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: lol\nspec:\n  image: app:v1\n",
			"app/p.txt":              laughs,
		}},
		{"alias bomb after a separator inside a block scalar", map[string]string{
			"app/kustomization.yaml": "resources: [cm.yaml, canaryapp.yaml]\n",
			"app/cm.yaml":            hidden,
			"app/canaryapp.yaml":     "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: lol\nspec:\n  image: app:v1\n",
		}},
		{"alias inside its own anchor", kust(cyclic)},
		{"a file over 1 MiB", kust(strings.Replace(laughs, "  a: &a", "  pad: "+strings.Repeat("x", maxFileBytes)+"\n  a: &a", 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := filesys.MakeFsInMemory()
			writeFiles(t, fsys, "repo", tt.files)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, rerr := Render(fsys, "repo/app", ForApp("x", "lol").WithDefaultNamespace("x"))
			_, aerr := Apply(fsys, "repo/app", ForApp("x", "lol").WithDefaultNamespace("x"), Change{Image: "app:v2"})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			for op, err := range map[string]error{"Render": rerr, "Apply": aerr} {
				if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrParse) {
					t.Errorf("%s: err = %v, want ErrTooLarge", op, err)
				}
				quiet(t, err, `"lol"`)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 50<<20 {
				t.Errorf("allocated %d MiB", d>>20)
			}
			if took > 10*time.Second {
				t.Errorf("took %s", took)
			}
			unchanged(t, fsys, "repo", tt.files)
		})
	}
}

// H4: many files that are each small add up to the per-render budget.
func TestRenderBudgetCoversAllReads(t *testing.T) {
	files := map[string]string{"app/canaryapp.yaml": leakApp}
	var res strings.Builder
	res.WriteString("resources:\n- canaryapp.yaml\n")
	// 20 files of 0.9 MiB each: every one under the file limit, 18 MiB in
	// all. Each is one long scalar, so far below the node limit.
	pad := strings.Repeat("x", 900<<10)
	for i := range 20 {
		name := "cm" + string(rune('a'+i)) + ".yaml"
		files["app/"+name] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name[:3] + "\ndata:\n  k: " + pad + "\n"
		res.WriteString("- " + name + "\n")
	}
	files["app/kustomization.yaml"] = res.String()
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "repo", files)
	_, err := Render(fsys, "repo/app", ForApp("evil", "leak"))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "16 MiB") {
		t.Errorf("err = %v, want ErrTooLarge about 16 MiB", err)
	}
}
