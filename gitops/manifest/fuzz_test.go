package manifest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// FuzzApply feeds arbitrary manifests and image strings to Apply. It must
// never panic, only return the package's errors, and when it succeeds the
// manifest must render with the change, and a second Apply must be a no-op.
func FuzzApply(f *testing.F) {
	seeds := []string{
		sampleHead + service,
		kustApp,
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata: {name: canaryapp-sample}\nspec: {image: a}\n",
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  image: &x a:1\n  failedImages: *x\n",
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  failedImages:\n  -\n    image: a\n  image: !!str a:1\n",
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  image: |\n    a:1\n",
		"---\n---\napiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n- 1\n",
		"apiVersion: canary.atze.io/v1\r\nkind: CanaryApp\r\nmetadata:\r\n  name: canaryapp-sample\r\nspec:\r\n  image: \"a:\\u0031\"",
	}
	for _, s := range seeds {
		f.Add(s, "ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3", "reason: with \"quotes\"\n")
		f.Add(s, "localhost:5000/app", "app@sha256:"+strings.Repeat("0", 64), "")
	}
	f.Fuzz(func(t *testing.T, manifest, image, failed, reason string) {
		fsys := filesys.MakeFsInMemory()
		if err := fsys.WriteFile("r/app.yaml", []byte(manifest)); err != nil {
			t.Fatal(err)
		}
		c := Change{Image: image, FailedImage: &v1.FailedImage{Image: failed, Reason: reason, Time: &failedT}}
		res, err := Apply(fsys, "r/app.yaml", app, c)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if data, _ := fsys.ReadFile("r/app.yaml"); string(data) != manifest {
				t.Fatalf("Apply failed (%v) but changed the file", err)
			}
			return
		}
		r, err := Render(fsys, "r/app.yaml", app)
		if err != nil {
			t.Fatalf("Apply succeeded (%+v) but Render fails: %v", res, err)
		}
		if r.Image != image || !slices.Contains(r.FailedImages, failed) {
			t.Fatalf("rendered %+v, want image %q and record %q", r, image, failed)
		}
		again, err := Apply(fsys, "r/app.yaml", app, c)
		if err != nil || len(again.Files) != 0 {
			t.Fatalf("second Apply = %+v, %v; want a no-op", again, err)
		}
	})
}
