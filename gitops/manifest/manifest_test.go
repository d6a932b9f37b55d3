package manifest

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

var (
	// The fixtures are namespace-less documents, as Argo CD applies them;
	// the caller has proven that "default" is where they are applied.
	app     = ForApp("default", "canaryapp-sample").WithDefaultNamespace("default")
	failedT = metav1.NewTime(time.Date(2026, 3, 1, 12, 1, 35, 0, time.UTC))
)

func rollbackTo(stable, failed string) Change {
	return Change{
		Image:        stable,
		ExpectImages: []string{failed},
		FailedImage:  &v1.FailedImage{Image: failed, Reason: "1 failed check at weight 30%", Time: &failedT},
	}
}

// fsKinds runs a test against an in-memory FileSystem and against disk.
// root is where the test's files live; paths in the test are relative to it.
var fsKinds = []struct {
	name string
	make func(t *testing.T) (filesys.FileSystem, string)
}{
	{"memory", func(t *testing.T) (filesys.FileSystem, string) { return filesys.MakeFsInMemory(), "repo" }},
	{"disk", func(t *testing.T) (filesys.FileSystem, string) { return filesys.MakeFsOnDisk(), t.TempDir() }},
}

func writeFiles(t *testing.T, fsys filesys.FileSystem, root string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := fsys.MkdirAll(filepath.Dir(full)); err != nil {
			t.Fatal(err)
		}
		if err := fsys.WriteFile(full, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
}

func readFiles(t *testing.T, fsys filesys.FileSystem, root string, names []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range names {
		data, err := fsys.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		out[p] = string(data)
	}
	return out
}

const sampleHead = `# The sample app. Argo CD syncs this folder.
apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample   # must match the Service
  labels:
    app: canaryapp-sample
spec:
  # the image under canary
  image: ghcr.io/atze/app:v3 # bumped by CI

  imageListenPort: 8080
  replicas: 3
  testReplicas: 1
  prometheusQuery: 'increase(istio_requests_total{response_code=~"5.*"}[20s]) > 2'
  prometheusURL: "http://prometheus.istio-system.svc:9090"
  analysis:
    stepWeights:
      - 10
      - 30
`

const service = `---
# a Service in the same file, untouched
apiVersion: v1
kind: Service
metadata:
  name: canaryapp-sample
spec:
  ports:
  - port: 80   # http
`

const kustomization = `# kustomization for the sample
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- canaryapp.yaml
configurations:
- image-fields.yaml   # spec/image of CanaryApp is an image
images:
- name: ghcr.io/atze/app
  newTag: v3 # set by CI
`

const imageFields = `images:
- path: spec/image
  kind: CanaryApp
`

const kustApp = `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
spec:
  image: ghcr.io/atze/app:v1 # source
  replicas: 2
`

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		path    string
		target  Target
		change  Change
		want    Result // Files relative to the root
		wantOut map[string]string
	}{
		{
			name:   "rollback in a multi-document file adds the record and keeps every other byte",
			files:  map[string]string{"apps/sample/app.yaml": sampleHead + service},
			path:   "apps/sample",
			target: app,
			change: rollbackTo("ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3"),
			want: Result{Files: []string{"apps/sample/app.yaml"}, PreviousImage: "ghcr.io/atze/app:v3",
				ImageChanged: true, RecordAdded: true},
			wantOut: map[string]string{"apps/sample/app.yaml": strings.Replace(sampleHead, "image: ghcr.io/atze/app:v3 #", "image: ghcr.io/atze/app:v2 #", 1) +
				`  failedImages:
    - image: ghcr.io/atze/app:v3
      reason: 1 failed check at weight 30%
      time: "2026-03-01T12:01:35Z"
` + service},
		},
		{
			name: "existing failedImages list gets an item in its own layout",
			files: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
  namespace: default
spec:
  image: "ghcr.io/atze/app:v3"
  failedImages:
  - image: ghcr.io/atze/app:v1  # keep
    reason: old
  # a comment after the list
status: {}
`},
			path:   "app.yaml",
			target: app,
			change: rollbackTo("ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3"),
			want: Result{Files: []string{"app.yaml"}, PreviousImage: "ghcr.io/atze/app:v3",
				ImageChanged: true, RecordAdded: true},
			wantOut: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
  namespace: default
spec:
  image: "ghcr.io/atze/app:v2"
  failedImages:
  - image: ghcr.io/atze/app:v1  # keep
    reason: old
  - image: ghcr.io/atze/app:v3
    reason: 1 failed check at weight 30%
    time: "2026-03-01T12:01:35Z"
  # a comment after the list
status: {}
`},
		},
		{
			name: "retry removes one record and keeps the image, the other records and comments",
			files: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
  namespace: default
spec:
  # the app
  image: ghcr.io/atze/app:v2
  failedImages:
  - image: ghcr.io/atze/app:v1  # keep
    reason: old
  - image: ghcr.io/atze/app:v3
    reason: 1 failed check
`},
			path:   "app.yaml",
			target: app,
			change: Change{AllowImage: "ghcr.io/atze/app:v3"},
			want:   Result{Files: []string{"app.yaml"}, PreviousImage: "ghcr.io/atze/app:v2", RecordRemoved: true},
			wantOut: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
  namespace: default
spec:
  # the app
  image: ghcr.io/atze/app:v2
  failedImages:
  - image: ghcr.io/atze/app:v1 # keep
    reason: old
`},
		},
		{
			name: "retry of the only record removes the list",
			files: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
  namespace: default
spec:
  image: ghcr.io/atze/app:v2
  failedImages:
  - image: ghcr.io/atze/app:v3
`},
			path:   "app.yaml",
			target: app,
			change: Change{AllowImage: "ghcr.io/atze/app:v3"},
			want:   Result{Files: []string{"app.yaml"}, PreviousImage: "ghcr.io/atze/app:v2", RecordRemoved: true},
			wantOut: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
  namespace: default
spec:
  image: ghcr.io/atze/app:v2
`},
		},
		{
			name:    "an approval request sets spec.approvedImage and nothing else",
			files:   map[string]string{"apps/sample/app.yaml": sampleHead + service},
			path:    "apps/sample",
			target:  app,
			change:  Change{ApprovedImage: "ghcr.io/atze/app:v3"},
			want:    Result{Files: []string{"apps/sample/app.yaml"}, PreviousImage: "ghcr.io/atze/app:v3", ApprovalSet: true},
			wantOut: map[string]string{"apps/sample/app.yaml": sampleHead + "  approvedImage: ghcr.io/atze/app:v3\n" + service},
		},
		{
			name:   "retry of an image Git does not record changes nothing",
			files:  map[string]string{"apps/sample/app.yaml": sampleHead + service},
			path:   "apps/sample",
			target: app,
			change: Change{AllowImage: "ghcr.io/atze/app:v9"},
			want:   Result{PreviousImage: "ghcr.io/atze/app:v3"},
		},
		{
			name: "compare-and-swap: a newer image in Git is kept, only the record is written",
			files: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata: {name: canaryapp-sample}
spec:
  image: 'ghcr.io/atze/app:v4'
  replicas: 1`},
			path:   "app.yaml",
			target: app,
			change: rollbackTo("ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3"),
			want: Result{Files: []string{"app.yaml"}, PreviousImage: "ghcr.io/atze/app:v4",
				ImageSkipped: true, RecordAdded: true},
			wantOut: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata: {name: canaryapp-sample}
spec:
  image: 'ghcr.io/atze/app:v4'
  replicas: 1
  failedImages:
  - image: ghcr.io/atze/app:v3
    reason: 1 failed check at weight 30%
    time: "2026-03-01T12:01:35Z"
`},
		},
		{
			name: "promotion in the second file of a folder, other CanaryApps untouched",
			files: map[string]string{
				"apps/a.yaml":    "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: other\nspec:\n  image: app:v1\n",
				"apps/b.yml":     "# b\r\napiVersion: canary.atze.io/v1\r\nkind: CanaryApp\r\nmetadata:\r\n  name: canaryapp-sample\r\n  namespace: default\r\nspec:\r\n  image: localhost:5000/app:v1\r\n",
				"apps/c.yaml":    "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\n  namespace: staging\nspec:\n  image: localhost:5000/app:v1\n",
				"apps/notes.txt": "not yaml: [",
			},
			path:    "apps",
			target:  app,
			change:  Change{Image: "localhost:5000/app:v2", ExpectImages: []string{"localhost:5000/app:v1"}},
			want:    Result{Files: []string{"apps/b.yml"}, PreviousImage: "localhost:5000/app:v1", ImageChanged: true},
			wantOut: map[string]string{"apps/b.yml": "# b\r\napiVersion: canary.atze.io/v1\r\nkind: CanaryApp\r\nmetadata:\r\n  name: canaryapp-sample\r\n  namespace: default\r\nspec:\r\n  image: localhost:5000/app:v2\r\n"},
		},
		{
			name:   "record only, CRLF file without a final line break",
			files:  map[string]string{"app.yaml": "apiVersion: canary.atze.io/v1\r\nkind: CanaryApp\r\nmetadata:\r\n  name: canaryapp-sample\r\nspec:\r\n  image: app:v2"},
			path:   "app.yaml",
			target: app,
			change: Change{Image: "app:v2", FailedImage: &v1.FailedImage{Image: "app:v3", Reason: "timeout: canary not ready\n\"quoted\" # not a comment"}},
			want:   Result{Files: []string{"app.yaml"}, PreviousImage: "app:v2", RecordAdded: true},
			wantOut: map[string]string{"app.yaml": "apiVersion: canary.atze.io/v1\r\nkind: CanaryApp\r\nmetadata:\r\n  name: canaryapp-sample\r\nspec:\r\n  image: app:v2\r\n" +
				"  failedImages:\r\n  - image: app:v3\r\n    reason: \"timeout: canary not ready\\n\\\"quoted\\\" # not a comment\"\r\n"},
		},
		{
			name: "no-op when the manifest already holds image and record",
			files: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
spec:
  image: app:v2
  failedImages:
    - image: app:v3
`},
			path:   "app.yaml",
			target: app,
			change: rollbackTo("app:v2", "app:v3"),
			want:   Result{PreviousImage: "app:v2"},
		},
		{
			name: "flow-style list is re-encoded with comments kept",
			files: map[string]string{"app.yaml": `# head comment
apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
spec:
  image: app:v3 # line comment
  failedImages: []
`},
			path:   "app.yaml",
			target: app,
			change: Change{Image: "app:v2", FailedImage: &v1.FailedImage{Image: "app:v3"}},
			want:   Result{Files: []string{"app.yaml"}, PreviousImage: "app:v3", ImageChanged: true, RecordAdded: true},
			wantOut: map[string]string{"app.yaml": `# head comment
apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
spec:
  image: app:v2 # line comment
  failedImages:
  - image: app:v3
`},
		},
		{
			name: "block scalar image is re-encoded",
			files: map[string]string{"app.yaml": `apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: canaryapp-sample
spec:
  image: >-
    app:v3
`},
			path:    "app.yaml",
			target:  app,
			change:  Change{Image: "app:v2"},
			want:    Result{Files: []string{"app.yaml"}, PreviousImage: "app:v3", ImageChanged: true},
			wantOut: map[string]string{"app.yaml": "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  image: app:v2\n"},
		},
		{
			name: "kustomization images: entry is edited, the record goes into the CanaryApp",
			files: map[string]string{
				"apps/sample/kustomization.yaml": kustomization,
				"apps/sample/image-fields.yaml":  imageFields,
				"apps/sample/canaryapp.yaml":     kustApp,
			},
			path:   "apps/sample",
			target: app,
			change: rollbackTo("ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3"),
			want: Result{Files: []string{"apps/sample/canaryapp.yaml", "apps/sample/kustomization.yaml"},
				PreviousImage: "ghcr.io/atze/app:v3", ImageChanged: true, RecordAdded: true},
			wantOut: map[string]string{
				"apps/sample/kustomization.yaml": strings.Replace(kustomization, "newTag: v3 # set by CI", "newTag: v2 # set by CI", 1),
				"apps/sample/canaryapp.yaml": kustApp + `  failedImages:
  - image: ghcr.io/atze/app:v3
    reason: 1 failed check at weight 30%
    time: "2026-03-01T12:01:35Z"
`,
			},
		},
		{
			name: "kustomization images: registry with port, tag replaced by a digest",
			files: map[string]string{
				"k/kustomization.yaml": "configurations: [image-fields.yaml]\nresources: [app.yaml]\nimages:\n- name: localhost:5000/app\n  newTag: \"v3\"\n",
				"k/image-fields.yaml":  imageFields,
				"k/app.yaml":           strings.Replace(kustApp, "ghcr.io/atze/app:v1", "localhost:5000/app:v1", 1),
			},
			path:   "k",
			target: app,
			change: Change{Image: "localhost:5000/app@sha256:" + strings.Repeat("ab", 32)},
			want:   Result{Files: []string{"k/kustomization.yaml"}, PreviousImage: "localhost:5000/app:v3", ImageChanged: true},
			wantOut: map[string]string{
				"k/kustomization.yaml": "configurations: [image-fields.yaml]\nresources: [app.yaml]\nimages:\n- name: localhost:5000/app\n  digest: sha256:" + strings.Repeat("ab", 32) + "\n",
			},
		},
		{
			name: "kustomization images: newName is changed with the tag",
			files: map[string]string{
				"k/kustomization.yaml": "resources:\n  - app.yaml\nconfigurations:\n  - image-fields.yaml\nimages:\n  - name: app\n    newName: ghcr.io/atze/app\n    newTag: v3\n  - name: other\n    newTag: v9\n",
				"k/image-fields.yaml":  imageFields,
				"k/app.yaml":           strings.Replace(kustApp, "ghcr.io/atze/app:v1", "app:v1", 1),
			},
			path:   "k",
			target: app,
			change: Change{Image: "registry.example.com/team/app:v2", ExpectImages: []string{"ghcr.io/atze/app:v3"}},
			want:   Result{Files: []string{"k/kustomization.yaml"}, PreviousImage: "ghcr.io/atze/app:v3", ImageChanged: true},
			wantOut: map[string]string{
				"k/kustomization.yaml": "resources:\n  - app.yaml\nconfigurations:\n  - image-fields.yaml\nimages:\n  - name: app\n    newName: registry.example.com/team/app\n    newTag: v2\n  - name: other\n    newTag: v9\n",
			},
		},
		{
			name: "kustomization with namePrefix and namespace: the source document is found by its original name",
			files: map[string]string{
				"k/kustomization.yaml": "namePrefix: prod-\nnamespace: default\nresources:\n- app.yaml\n",
				"k/app.yaml":           kustApp,
			},
			path:   "k",
			target: ForApp("default", "prod-canaryapp-sample"),
			change: rollbackTo("ghcr.io/atze/app:v0", "ghcr.io/atze/app:v1"),
			want: Result{Files: []string{"k/app.yaml"}, PreviousImage: "ghcr.io/atze/app:v1",
				ImageChanged: true, RecordAdded: true},
			wantOut: map[string]string{"k/app.yaml": strings.Replace(kustApp, "app:v1 # source", "app:v0 # source", 1) + `  failedImages:
  - image: ghcr.io/atze/app:v1
    reason: 1 failed check at weight 30%
    time: "2026-03-01T12:01:35Z"
`},
		},
		{
			name: "overlay with a base outside the path: the image is changed in the overlay",
			files: map[string]string{
				"base/kustomization.yaml":    "resources:\n- canaryapp.yaml\n",
				"base/canaryapp.yaml":        kustApp,
				"overlay/kustomization.yaml": "resources:\n- ../base\nconfigurations:\n- fields.yaml\nimages:\n- name: ghcr.io/atze/app\n  newTag: v3\n",
				"overlay/fields.yaml":        imageFields,
			},
			path:    "overlay",
			target:  app,
			change:  Change{Image: "ghcr.io/atze/app:v4"},
			want:    Result{Files: []string{"overlay/kustomization.yaml"}, PreviousImage: "ghcr.io/atze/app:v3", ImageChanged: true},
			wantOut: map[string]string{"overlay/kustomization.yaml": "resources:\n- ../base\nconfigurations:\n- fields.yaml\nimages:\n- name: ghcr.io/atze/app\n  newTag: v4\n"},
		},
		{
			name: "kustomization pulling a sub-folder under the path: the record goes into its file",
			files: map[string]string{
				"apps/kustomization.yaml":        "resources:\n- sample\n",
				"apps/sample/kustomization.yaml": "resources:\n- canaryapp.yaml\n",
				"apps/sample/canaryapp.yaml":     kustApp,
			},
			path:   "apps",
			target: app,
			change: rollbackTo("ghcr.io/atze/app:v1", "ghcr.io/atze/app:v2"),
			want:   Result{Files: []string{"apps/sample/canaryapp.yaml"}, PreviousImage: "ghcr.io/atze/app:v1", RecordAdded: true},
			wantOut: map[string]string{"apps/sample/canaryapp.yaml": kustApp + `  failedImages:
  - image: ghcr.io/atze/app:v2
    reason: 1 failed check at weight 30%
    time: "2026-03-01T12:01:35Z"
`},
		},
	}
	for _, kind := range fsKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				fsys, root := kind.make(t)
				writeFiles(t, fsys, root, tt.files)
				got, err := Apply(fsys, filepath.Join(root, tt.path), tt.target, tt.change)
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				for i, f := range got.Files {
					got.Files[i], _ = filepath.Rel(root, f)
				}
				if !equalResult(got, tt.want) {
					t.Errorf("Result = %+v, want %+v", got, tt.want)
				}
				want := maps.Clone(tt.files)
				maps.Copy(want, tt.wantOut)
				for p, data := range readFiles(t, fsys, root, slices.Collect(maps.Keys(tt.files))) {
					if data != want[p] {
						t.Errorf("%s:\n%s\nwant:\n%s", p, data, want[p])
					}
				}

				// A second Apply finds everything in place.
				again, err := Apply(fsys, filepath.Join(root, tt.path), tt.target, tt.change)
				if err != nil {
					t.Fatalf("second Apply: %v", err)
				}
				if len(again.Files) != 0 || again.ImageChanged || again.RecordAdded || again.RecordRemoved || again.ApprovalSet {
					t.Errorf("second Apply = %+v, want a no-op", again)
				}
				r, err := Render(fsys, filepath.Join(root, tt.path), tt.target)
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				wantImage := tt.change.Image
				if tt.want.ImageSkipped || tt.change.Image == "" {
					wantImage = tt.want.PreviousImage
				}
				if r.Image != wantImage {
					t.Errorf("rendered image %q, want %q", r.Image, wantImage)
				}
				if tt.change.FailedImage != nil && !slices.Contains(r.FailedImages, tt.change.FailedImage.Image) {
					t.Errorf("rendered failed images %q lack %q", r.FailedImages, tt.change.FailedImage.Image)
				}
				if tt.change.ApprovedImage != "" && r.ApprovedImage != tt.change.ApprovedImage {
					t.Errorf("rendered approvedImage %q, want %q", r.ApprovedImage, tt.change.ApprovedImage)
				}
				if tt.change.AllowImage != "" && slices.Contains(r.FailedImages, tt.change.AllowImage) {
					t.Errorf("rendered failed images %q still hold %q", r.FailedImages, tt.change.AllowImage)
				}
			})
		}
	}
}

func equalResult(a, b Result) bool {
	return slices.Equal(a.Files, b.Files) && a.PreviousImage == b.PreviousImage &&
		a.ImageChanged == b.ImageChanged && a.ImageSkipped == b.ImageSkipped && a.RecordAdded == b.RecordAdded
}

func TestApplyErrors(t *testing.T) {
	canary := func(name, ns string) string {
		s := "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: " + name + "\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s + "spec:\n  image: app:v3\n"
	}
	tests := []struct {
		name    string
		files   map[string]string
		path    string
		change  Change
		wantErr error
		wantMsg string
	}{
		{"path missing", map[string]string{"a.yaml": canary("canaryapp-sample", "")}, "nope",
			rollbackTo("app:v2", "app:v3"), ErrPathNotFound, "nope"},
		{"file missing in the folder's place", map[string]string{"apps/a.yaml": canary("x", "")}, "apps/app.yaml",
			rollbackTo("app:v2", "app:v3"), ErrPathNotFound, "app.yaml"},
		{"document missing", map[string]string{"apps/a.yaml": canary("other", "") + "---\n" + canary("canaryapp-sample", "prod")}, "apps",
			rollbackTo("app:v2", "app:v3"), ErrNoDocument, "no CanaryApp.canary.atze.io default/canaryapp-sample in 1 YAML file(s)"},
		{"two matching documents", map[string]string{"apps/a.yaml": canary("canaryapp-sample", ""), "apps/b.yaml": "---\n" + canary("canaryapp-sample", "default")}, "apps",
			rollbackTo("app:v2", "app:v3"), ErrAmbiguous, "a.yaml (document 1, line 1)"},
		{"unparseable YAML", map[string]string{"apps/a.yaml": canary("canaryapp-sample", ""), "apps/b.yaml": "a: [1,\n"}, "apps",
			rollbackTo("app:v2", "app:v3"), ErrParse, "b.yaml"},
		{"invalid image", map[string]string{"a.yaml": canary("canaryapp-sample", "")}, "a.yaml",
			Change{Image: "App:V2\n"}, ErrInvalidChange, "is not an image reference"},
		{"invalid failed image", map[string]string{"a.yaml": canary("canaryapp-sample", "")}, "a.yaml",
			Change{Image: "app:v2", FailedImage: &v1.FailedImage{Image: ""}}, ErrInvalidChange, "failed image"},
		{"kustomize build fails", map[string]string{"k/kustomization.yaml": "resources:\n- missing.yaml\n"}, "k",
			rollbackTo("app:v2", "app:v3"), ErrRender, "kustomize build failed"},
		{"remote resource", map[string]string{"k/kustomization.yaml": "resources:\n- https://github.com/o/r//base?ref=v1\n"}, "k",
			rollbackTo("app:v2", "app:v3"), ErrRender, "remote resource"},
		{"overlay with a base outside the path cannot record", map[string]string{
			"base/kustomization.yaml":    "resources:\n- canaryapp.yaml\n",
			"base/canaryapp.yaml":        kustApp,
			"overlay/kustomization.yaml": "resources:\n- ../base\nconfigurations:\n- fields.yaml\nimages:\n- name: ghcr.io/atze/app\n  newTag: v3\n",
			"overlay/fields.yaml":        imageFields,
		}, "overlay", rollbackTo("ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3"), ErrNotEditable, "comes from outside this path"},
		{"images: entry that kustomize does not apply to spec.image", map[string]string{
			"k/kustomization.yaml": "resources:\n- app.yaml\nimages:\n- name: ghcr.io/atze/app\n  newTag: v9\n",
			"k/app.yaml":           kustApp,
		}, "k", Change{Image: "ghcr.io/atze/app:v2"}, ErrRenderMismatch, `names image "ghcr.io/atze/app:v1", want "ghcr.io/atze/app:v2" (does the kustomization declare`},
		{"two images: entries match", map[string]string{
			"k/kustomization.yaml": "resources:\n- app.yaml\nconfigurations: [f.yaml]\nimages:\n- name: ghcr.io/atze/app\n- name: ghcr.io/atze/app\n  newTag: v1\n",
			"k/f.yaml":             imageFields,
			"k/app.yaml":           kustApp,
		}, "k", Change{Image: "ghcr.io/atze/app:v2"}, ErrAmbiguous, "2 images: entries match"},
		{"kustomization renders two matching CanaryApps", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n- b.yaml\n",
			"k/a.yaml":             kustApp,
			"k/b.yaml":             strings.Replace(kustApp, "  name: canaryapp-sample\n", "  name: canaryapp-sample\n  namespace: default\n", 1),
		}, "k", Change{Image: "ghcr.io/atze/app:v2"}, ErrRender, "already registered id"},
		{"kustomization renders no match", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n",
			"k/a.yaml":             strings.Replace(kustApp, "canaryapp-sample", "x", 1),
		}, "k", Change{Image: "ghcr.io/atze/app:v2"}, ErrNoDocument, "renders no CanaryApp"},
	}
	for _, kind := range fsKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				fsys, root := kind.make(t)
				writeFiles(t, fsys, root, tt.files)
				_, err := Apply(fsys, filepath.Join(root, tt.path), app, tt.change)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("err %T is not *Error", err)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("err = %q, want it to mention %q", err, tt.wantMsg)
				}
				for p, data := range readFiles(t, fsys, root, slices.Collect(maps.Keys(tt.files))) {
					if data != tt.files[p] {
						t.Errorf("%s changed on error:\n%s", p, data)
					}
				}
			})
		}
	}
}

func TestRenderPlain(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "r", map[string]string{"app.yaml": sampleHead + "  failedImages:\n  - image: a:1\n  - {image: a:2, reason: x}\n" + service})
	got, err := Render(fsys, "r", app)
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != "ghcr.io/atze/app:v3" || !slices.Equal(got.FailedImages, []string{"a:1", "a:2"}) {
		t.Errorf("Render = %+v", got)
	}
}

func TestFormatScalar(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"ghcr.io/atze/app:v2", "ghcr.io/atze/app:v2"},
		{"localhost:5000/app@sha256:abc", "localhost:5000/app@sha256:abc"},
		{"1 failed check at weight 30%", "1 failed check at weight 30%"},
		{"123.dkr.ecr.eu-west-1.amazonaws.com/app:v1", "123.dkr.ecr.eu-west-1.amazonaws.com/app:v1"},
		{"1.5", `"1.5"`},
		{"0x1F", `"0x1F"`},
		{"017", `"017"`},
		{"1_000", `"1_000"`},
		{"190:20:30", `"190:20:30"`},
		{"1e3", `"1e3"`},
		{".inf", `".inf"`},
		{"2026-03-01", `"2026-03-01"`},
		{"Yes", `"Yes"`},
		{"~", `"~"`},
		{"on", `"on"`},
		{"null", `"null"`},
		{"2026-03-01T12:01:35Z", `"2026-03-01T12:01:35Z"`},
		{"a: b", `"a: b"`},
		{"a #b", `"a #b"`},
		{"- x", `"- x"`},
		{"line\nbreak", `"line\nbreak"`},
		{"<&>", "<&>"},
		{"&anchor", `"&anchor"`},
		{"*alias", `"*alias"`},
		{"!tag", `"!tag"`},
		{"[x]", `"[x]"`},
		{" padded ", `" padded "`},
	}
	for _, tt := range tests {
		if got := formatScalar(tt.in, 0); got != tt.want {
			t.Errorf("formatScalar(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := decodeScalar(formatScalar(tt.in, 0)); got != tt.in {
			t.Errorf("formatScalar(%q) reads back as %q", tt.in, got)
		}
	}
	if got := formatScalar("it's", yaml.SingleQuotedStyle); got != `'it''s'` {
		t.Errorf("single-quoted: %s", got)
	}
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ in, repo, tag, digest string }{
		{"app", "app", "", ""},
		{"app:v2", "app", "v2", ""},
		{"localhost:5000/app", "localhost:5000/app", "", ""},
		{"localhost:5000/app:v2", "localhost:5000/app", "v2", ""},
		{"ghcr.io/a/b@sha256:00ff", "ghcr.io/a/b", "", "sha256:00ff"},
		{"localhost:5000/a/b:v1@sha256:00ff", "localhost:5000/a/b", "v1", "sha256:00ff"},
	}
	for _, tt := range tests {
		r, tag, d := splitImage(tt.in)
		if r != tt.repo || tag != tt.tag || d != tt.digest {
			t.Errorf("splitImage(%q) = %q %q %q", tt.in, r, tag, d)
		}
	}
}

func TestApplyKustomizeIdentity(t *testing.T) {
	twoApps := map[string]string{
		"k/kustomization.yaml": "namePrefix: prod-\nresources:\n- a.yaml\n- b.yaml\n",
		"k/a.yaml":             strings.Replace(kustApp, "canaryapp-sample", "sample", 1),
		"k/b.yaml":             kustApp,
	}
	t.Run("the longest name contained in the rendered name is the source", func(t *testing.T) {
		fsys := filesys.MakeFsInMemory()
		writeFiles(t, fsys, "r", twoApps)
		res, err := Apply(fsys, "r/k", ForApp("default", "prod-canaryapp-sample").WithDefaultNamespace("default"), rollbackTo("ghcr.io/atze/app:v1", "ghcr.io/atze/app:v2"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Files, []string{"r/k/b.yaml"}) || !res.RecordAdded {
			t.Errorf("Result = %+v, want the record in b.yaml", res)
		}
		r, err := Render(fsys, "r/k", ForApp("default", "prod-sample").WithDefaultNamespace("default"))
		if err != nil || len(r.FailedImages) != 0 {
			t.Errorf("the other app was changed: %+v, %v", r, err)
		}
	})
	t.Run("a target without namespace that renders twice is ambiguous", func(t *testing.T) {
		fsys := filesys.MakeFsInMemory()
		writeFiles(t, fsys, "r", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n- b.yaml\n",
			"k/a.yaml":             strings.Replace(kustApp, "  name: canaryapp-sample\n", "  name: canaryapp-sample\n  namespace: staging\n", 1),
			"k/b.yaml":             strings.Replace(kustApp, "  name: canaryapp-sample\n", "  name: canaryapp-sample\n  namespace: prod\n", 1),
		})
		_, err := Apply(fsys, "r/k", ForApp("", "canaryapp-sample"), Change{Image: "ghcr.io/atze/app:v2"})
		if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "renders CanaryApp.canary.atze.io */canaryapp-sample 2 times") {
			t.Errorf("err = %v, want ErrAmbiguous naming the target", err)
		}
	})
}

func TestApplyRespectsTheRecordLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  image: app:v3\n  failedImages:\n")
	for i := range maxFailed {
		b.WriteString("  - image: app:old" + strconv.Itoa(i) + "\n")
	}
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "r", map[string]string{"app.yaml": b.String()})
	_, err := Apply(fsys, "r/app.yaml", app, rollbackTo("app:v2", "app:v3"))
	if !errors.Is(err, ErrNotEditable) || !strings.Contains(err.Error(), "already holds 100 records") {
		t.Errorf("err = %v, want ErrNotEditable about the limit", err)
	}
}

func TestReasonIsCutToTheAPILimit(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	writeFiles(t, fsys, "r", map[string]string{"app.yaml": kustApp})
	c := rollbackTo("ghcr.io/atze/app:v0", "ghcr.io/atze/app:v1")
	c.FailedImage.Reason = strings.Repeat("é", 5000)
	if _, err := Apply(fsys, "r/app.yaml", app, c); err != nil {
		t.Fatal(err)
	}
	data, _ := fsys.ReadFile("r/app.yaml")
	var doc struct {
		Spec v1.CanaryAppSpec `json:"spec"`
	}
	if err := sigsyaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(doc.Spec.FailedImages[0].Reason); n != maxReasonChars {
		t.Errorf("reason has %d characters, want %d", n, maxReasonChars)
	}
	if !doc.Spec.FailedImages[0].Time.Equal(&failedT) {
		t.Errorf("time = %v, want %v", doc.Spec.FailedImages[0].Time, failedT)
	}
}
