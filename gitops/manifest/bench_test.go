package manifest

import (
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// BenchmarkApply measures one rollback edit, render check included, on an
// in-memory tree: plain YAML and a kustomization with an images: entry.
func BenchmarkApply(b *testing.B) {
	cases := []struct {
		name  string
		files map[string]string
		path  string
	}{
		{"plain", map[string]string{"apps/sample/app.yaml": sampleHead + service}, "apps/sample"},
		{"kustomize", map[string]string{
			"apps/sample/kustomization.yaml": kustomization,
			"apps/sample/image-fields.yaml":  imageFields,
			"apps/sample/canaryapp.yaml":     kustApp,
		}, "apps/sample"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			change := rollbackTo("ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3")
			for b.Loop() {
				b.StopTimer()
				fsys := filesys.MakeFsInMemory()
				for p, data := range c.files {
					if err := fsys.WriteFile("r/"+p, []byte(data)); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				res, err := Apply(fsys, "r/"+c.path, app, change)
				if err != nil || len(res.Files) == 0 {
					b.Fatalf("Apply = %+v, %v", res, err)
				}
			}
		})
	}
}
