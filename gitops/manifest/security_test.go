package manifest

import (
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atzedevries/canaryop/internal/testhostile"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// These tests perform the attacks of the 2026-12 security review
// (C1 item 3, H1, M1) against Render and Apply. Repository content and
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

// H1: a kustomization must not make the operator fetch anything. Each case
// names a server on 127.0.0.1 (standing in for cloud metadata or an
// internal API) in one field kustomize loads files or folders from. Before
// the fix most of them were fetched (the PoC's hits=3), and the body could
// come back as spec.image.
func TestRenderNeverFetches(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t"}`))
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("u", "tok3n") // userinfo must never be echoed
	remote := u.String()
	hostPort := u.Host
	k := func(rest string) map[string]string {
		return map[string]string{"app/kustomization.yaml": "resources:\n- canaryapp.yaml\n" + rest}
	}
	patchTransformer := "apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: p\npath: " + remote + "/patch.yaml\ntarget:\n  kind: CanaryApp\n"
	tests := []struct {
		name  string
		files map[string]string
		field string
	}{
		{"resources file", k("- " + remote + "/cm.yaml\n"), "resources[1]"},
		{"resources git", k("- " + remote + "/org/repo.git//base?ref=main\n"), "resources[1]"},
		{"resources scp-style git", k("- git@" + hostPort + ":org/repo.git\n"), "resources[1]"},
		{"resources user@host git", k("- bob@" + hostPort + "/org/repo\n"), "resources[1]"},
		{"resources github.com without scheme", k("- github.com/org/repo//base?ref=v1\n"), "resources[1]"},
		{"resources forced git::", k("- git::" + remote + "/org/repo.git\n"), "resources[1]"},
		{"resources file scheme", k("- file:///tmp/repo.git\n"), "resources[1]"},
		{"resources upper-case scheme", k("- HTTP://" + hostPort + "/cm.yaml\n"), "resources[1]"},
		{"bases", k("bases:\n- " + remote + "/base.git\n"), "bases[0]"},
		{"components", k("components:\n- " + remote + "/comp.git\n"), "components[0]"},
		{"crds", k("crds:\n- " + remote + "/crd.yaml\n"), "crds[0]"},
		{"configurations", k("configurations:\n- " + remote + "/conf.yaml\n"), "configurations[0]"},
		{"generators path", k("generators:\n- " + remote + "/gen.yaml\n"), "generators[0]"},
		{"generators inline config", k("generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata:\n    name: loot\n  files:\n  - body=" + remote + "/x\n"), "generators[0]"},
		{"transformers file config", map[string]string{
			"app/kustomization.yaml": "resources:\n- canaryapp.yaml\ntransformers:\n- t.yaml\n",
			"app/t.yaml":             patchTransformer,
		}, "transformers[0]"},
		{"transformers file config, base64", map[string]string{
			"app/kustomization.yaml": "resources:\n- canaryapp.yaml\ntransformers:\n- t.yaml\n",
			"app/t.yaml": strings.Replace(patchTransformer, "path: "+remote+"/patch.yaml",
				"path: !!binary "+base64.StdEncoding.EncodeToString([]byte(remote+"/patch.yaml")), 1),
		}, "transformers[0]"},
		{"validators", k("validators:\n- " + remote + "/v.yaml\n"), "validators[0]"},
		{"patches path", k("patches:\n- path: " + remote + "/p.yaml\n  target: {kind: CanaryApp}\n"), "patches[0].path"},
		{"patchesStrategicMerge", k("patchesStrategicMerge:\n- " + remote + "/p.yaml\n"), "patchesStrategicMerge[0]"},
		{"patchesJson6902 path", k("patchesJson6902:\n- path: " + remote + "/p.json\n  target: {group: canary.atze.io, version: v1, kind: CanaryApp, name: leak}\n"), "patchesJson6902[0].path"},
		{"replacements path", k("replacements:\n- path: " + remote + "/r.yaml\n"), "replacements[0].path"},
		{"configMapGenerator files key=URL (the PoC)", k("generatorOptions:\n  disableNameSuffixHash: true\nconfigMapGenerator:\n- name: loot\n  files:\n  - body=" + remote +
			"/latest/meta-data/iam/security-credentials/node-role\nreplacements:\n- source: {kind: ConfigMap, name: loot, fieldPath: data.body}\n  targets:\n  - select: {kind: CanaryApp, name: leak}\n    fieldPaths: [spec.image]\n"),
			"configMapGenerator[0].files[0]"},
		{"configMapGenerator files URL", k("configMapGenerator:\n- name: loot\n  files:\n  - " + remote + "/body\n"), "configMapGenerator[0].files[0]"},
		{"configMapGenerator envs", k("configMapGenerator:\n- name: loot\n  envs:\n  - " + remote + "/e.env\n"), "configMapGenerator[0].envs[0]"},
		{"configMapGenerator env", k("configMapGenerator:\n- name: loot\n  env: " + remote + "/e.env\n"), "configMapGenerator[0].env"},
		{"secretGenerator files", k("secretGenerator:\n- name: loot\n  files:\n  - " + remote + "/s\n"), "secretGenerator[0].files[0]"},
		{"openapi path", k("openapi:\n  path: " + remote + "/schema.json\n"), "openapi.path"},
		{"helmCharts", k("helmCharts:\n- name: x\n  repo: " + remote + "\n  version: 1.0.0\n"), "helmCharts"},
		{"helmGlobals", k("helmGlobals:\n  chartHome: charts\n"), "helmGlobals"},
		{"helmChartInflationGenerator", k("helmChartInflationGenerator:\n- chartName: x\n  chartRepoUrl: " + remote + "\n"), "helmChartInflationGenerator"},
		{"field name in another case", map[string]string{"app/kustomization.yaml": "RESOURCES:\n- canaryapp.yaml\n- " + remote + "/cm.yaml\n"}, "resources[1]"},
		{"fields behind a merge key", map[string]string{"app/kustomization.yaml": "<<: {resources: [canaryapp.yaml, " + remote + "/cm.yaml]}\n"}, "resources[1]"},
		{"a base outside the path", map[string]string{
			"app/kustomization.yaml":  "resources:\n- canaryapp.yaml\n- ../base\n",
			"base/kustomization.yaml": "configMapGenerator:\n- name: loot\n  files:\n  - " + remote + "/x\n",
		}, "a kustomization outside this path: configMapGenerator[0].files[0]"},
		{"a component under the path", map[string]string{
			"app/kustomization.yaml":      "resources:\n- canaryapp.yaml\ncomponents:\n- comp\n",
			"app/comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nconfigMapGenerator:\n- name: loot\n  files:\n  - " + remote + "/x\n",
		}, "configMapGenerator[0].files[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := filesys.MakeFsInMemory()
			files := maps.Clone(tt.files)
			files["app/canaryapp.yaml"] = leakApp
			writeFiles(t, fsys, "repo", files)
			target := ForApp("evil", "leak")
			before := hits.Load()

			_, rerr := Render(fsys, "repo/app", target)
			res, aerr := Apply(fsys, "repo/app", target, Change{
				Image:        "registry.example/app:v1",
				ExpectImages: []string{"registry.example/app:v2"},
				FailedImage:  &v1.FailedImage{Image: "registry.example/app:v2", Reason: "x"},
			})
			if n := hits.Load() - before; n != 0 {
				t.Errorf("the server was hit %d times", n)
			}
			for op, err := range map[string]error{"Render": rerr, "Apply": aerr} {
				if !errors.Is(err, ErrRemoteReference) || !errors.Is(err, ErrRender) {
					t.Errorf("%s: err = %v, want ErrRemoteReference", op, err)
					continue
				}
				if !strings.Contains(err.Error(), "remote reference not allowed") || !strings.Contains(err.Error(), tt.field) {
					t.Errorf("%s: err = %q, want it to name %s", op, err, tt.field)
				}
				quiet(t, err, "127.0.0.1", "tok3n", "github.com", "s3cr3t")
			}
			if res.PreviousImage != "" {
				t.Errorf("Apply reported %q", res.PreviousImage)
			}
			unchanged(t, fsys, "repo", files)
		})
	}
}

// URLs that are values rather than references render as before.
func TestURLValuesAreNotReferences(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "repo", map[string]string{
		"app/kustomization.yaml": `resources:
- canaryapp.yaml
commonAnnotations:
  runbook: https://wiki.example.com/payments
configMapGenerator:
- name: links
  literals:
  - docs=https://docs.example.com/
patches:
- target: {kind: CanaryApp}
  patch: |
    - op: add
      path: /metadata/annotations/source
      value: https://github.com/acme/payments
`,
		"app/canaryapp.yaml": leakApp,
	})
	r, err := Render(fsys, "repo/app", ForApp("evil", "leak"))
	if err != nil || r.Image != "registry.example/app:v2" {
		t.Errorf("Render = %+v, %v", r, err)
	}
}

// laughs is the review's 450-byte CanaryApp whose nine levels of aliases
// stand for 9^9 scalars.
var laughs = testhostile.AliasBomb("lol", "app:v1")

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
		{"a dense flow sequence just under 1 MiB", kust("[" + strings.Repeat("a,", maxFileBytes/2-4) + "a]\n")},
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

// H4: kustomize costs far more per node than a parse, so a build reads a
// few tens of thousands of nodes at most. Before, this 30000-node ConfigMap
// rendered in seconds and tens of MiB (a 90000-node one, under every file
// limit, took 24s and 113 MiB of heap).
func TestKustomizeBuildNodeBudget(t *testing.T) {
	var cm strings.Builder
	cm.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n")
	for i := range maxKustomizeNodes/2 + 1000 {
		cm.WriteString("  k" + strconv.Itoa(i) + ": v\n")
	}
	files := map[string]string{
		"app/kustomization.yaml": "resources: [canaryapp.yaml, cm.yaml]\n",
		"app/canaryapp.yaml":     leakApp,
		"app/cm.yaml":            cm.String(),
	}
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "repo", files)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Render(fsys, "repo/app", ForApp("evil", "leak"))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "kustomize build") {
		t.Errorf("err = %v, want ErrTooLarge about the kustomize build", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 50<<20 {
		t.Errorf("allocated %d MiB", d>>20)
	}

	// The same ConfigMap in a plain folder is only parsed, which is cheap.
	plain := map[string]string{"plain/canaryapp.yaml": leakApp, "plain/cm.yaml": cm.String()}
	writeFiles(t, fsys, "repo", plain)
	if r, err := Render(fsys, "repo/plain", ForApp("evil", "leak")); err != nil || r.Image != "registry.example/app:v2" {
		t.Errorf("plain Render = %+v, %v", r, err)
	}
}

// H1: a rendered spec.image that is not an image reference is never
// reported; the review's PoC made it the body of a fetched URL, here it is
// a generated ConfigMap's literal. Before the fix Render returned it and
// Apply put it in Result.PreviousImage (status, events, commit message).
func TestRenderedValuesThatAreNotImagesAreNotEchoed(t *testing.T) {
	const secret = `{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t"}`
	files := map[string]string{
		"app/canaryapp.yaml": leakApp,
		"app/kustomization.yaml": `resources:
- canaryapp.yaml
generatorOptions:
  disableNameSuffixHash: true
configMapGenerator:
- name: loot
  literals:
  - 'body=` + secret + `'
replacements:
- source: {kind: ConfigMap, name: loot, fieldPath: data.body}
  targets:
  - select: {kind: CanaryApp, name: leak}
    fieldPaths: [spec.image]
`,
	}
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "repo", files)
	target := ForApp("evil", "leak")
	r, err := Render(fsys, "repo/app", target)
	if r.Image != "" || !errors.Is(err, ErrNotEditable) || !strings.Contains(err.Error(), "the manifest's spec.image is not an image reference") {
		t.Errorf("Render = %+v, %v; want the image refused", r, err)
	}
	quiet(t, err, "s3cr3t", "ASIA")
	res, err := Apply(fsys, "repo/app", target, Change{
		Image:        "registry.example/app:v1",
		ExpectImages: []string{"registry.example/app:v2"},
		FailedImage:  &v1.FailedImage{Image: "registry.example/app:v2", Reason: "x"},
	})
	if res.PreviousImage != "" || !errors.Is(err, ErrNotEditable) {
		t.Errorf("Apply = %+v, %v; want the image refused", res, err)
	}
	quiet(t, err, "s3cr3t", "ASIA")
	unchanged(t, fsys, "repo", files)

	// The same for a plain manifest a person wrote.
	plain := map[string]string{"p/app.yaml": strings.Replace(leakApp, "registry.example/app:v2", "'token=tok3n'", 1)}
	writeFiles(t, fsys, "repo", plain)
	res, err = Apply(fsys, "repo/p", target, Change{Image: "registry.example/app:v1"})
	if res.PreviousImage != "" || !errors.Is(err, ErrNotEditable) {
		t.Errorf("plain Apply = %+v, %v; want the image refused", res, err)
	}
	quiet(t, err, "tok3n")
	unchanged(t, fsys, "repo", plain)
}

// M1: error text reaches the app's status, so it never quotes what the
// repository says, nor names files outside the app's path. Before the fix
// each of these quoted tok3n (a remote URL's userinfo, a kustomize message
// quoting a resource name or field, a YAML anchor name) or named team-b's
// folder.
func TestErrorsDoNotQuoteTheRepository(t *testing.T) {
	doc := "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: lol\n  namespace: x\nspec:\n  image: app:v1\n"
	tests := []struct {
		name    string
		files   map[string]string
		path    string
		wantErr error
	}{
		{"remote resource with userinfo", map[string]string{"apps/x/kustomization.yaml": "resources:\n- https://u:tok3n@git.example.com/o/r//base\n"},
			"apps/x", ErrRemoteReference},
		{"a resource id in a kustomize error", map[string]string{
			"apps/x/kustomization.yaml": "resources: [cm.yaml, app.yaml]\n",
			"apps/x/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tok3n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tok3n\n",
			"apps/x/app.yaml":           doc,
		}, "apps/x", ErrRender},
		{"a field path in a kustomize error", map[string]string{
			"apps/x/kustomization.yaml": "resources: [app.yaml]\nreplacements:\n- source: {kind: CanaryApp, fieldPath: spec.tok3n}\n  targets: [{select: {kind: CanaryApp}, fieldPaths: [spec.image]}]\n",
			"apps/x/app.yaml":           doc,
		}, "apps/x", ErrRender},
		{"an anchor name in a YAML error", map[string]string{"apps/x/app.yaml": doc + "  x: *tok3n\n"}, "apps/x", ErrParse},
		{"a broken kustomization in another team's folder", map[string]string{
			"apps/x/kustomization.yaml":               "resources: [../team-b/payments]\n",
			"apps/team-b/payments/kustomization.yaml": "resources: [tok3n\n",
		}, "apps/x", ErrParse},
		{"a remote reference in another team's folder", map[string]string{
			"apps/x/kustomization.yaml":               "resources: [../team-b/payments]\n",
			"apps/team-b/payments/kustomization.yaml": "resources: [https://tok3n.example.com/x]\n",
		}, "apps/x", ErrRemoteReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := filesys.MakeFsInMemory()
			writeFiles(t, fsys, "repo", tt.files)
			_, err := Apply(fsys, filepath.Join("repo", tt.path), ForApp("x", "lol"), Change{Image: "app:v2"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			quiet(t, err, "tok3n", "team-b")
		})
	}
}

// H4: a chain of tiny kustomizations, each under every byte limit, is cut
// off by the count of kustomizations a render may reach.
func TestKustomizationChainIsBounded(t *testing.T) {
	files := map[string]string{"app/kustomization.yaml": "resources: [../k0]\n"}
	for i := range maxKustomizations + 1 {
		files["k"+strconv.Itoa(i)+"/kustomization.yaml"] = "resources: [../k" + strconv.Itoa(i+1) + "]\n"
	}
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "repo", files)
	_, err := Render(fsys, "repo/app", ForApp("evil", "leak"))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "kustomizations") {
		t.Errorf("err = %v, want ErrTooLarge about the number of kustomizations", err)
	}
}
