// Command render prints the manifests of a kustomization of this repository
// with the operator image set, as `kustomize edit set image` and `kustomize
// build` would, without a kustomize binary: make deploy (IMG) and make
// release (VERSION, DIGEST) use it.
//
//	go run ./hack/render -image ghcr.io/atzedevries/canaryop:v0.1.0@sha256:... config/default
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// imageName is the image name config/manager's kustomization sets.
const imageName = "canaryop"

func main() {
	image := flag.String("image", "", "operator image: REPOSITORY[:TAG][@DIGEST]")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: render -image REPOSITORY[:TAG][@DIGEST] KUSTOMIZATION-DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *image == "" {
		flag.Usage()
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *image)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

// render builds an overlay of dir, in memory, that only sets the image.
func render(dir, image string) ([]byte, error) {
	img, err := parseImage(image)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fs := filesys.MakeFsOnDisk()
	overlay, err := os.MkdirTemp("", "canaryop-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	// kustomize takes no absolute path as a resource.
	base, err := filepath.Rel(overlay, abs)
	if err != nil {
		return nil, err
	}
	k := types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources: []string{base},
		Images:    []types.Image{img},
	}
	data, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), data, 0o600); err != nil {
		return nil, err
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, overlay)
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}

// parseImage splits REPOSITORY[:TAG][@DIGEST]; a registry port
// (localhost:5000/canaryop) is not a tag.
func parseImage(ref string) (types.Image, error) {
	img := types.Image{Name: imageName}
	rest, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return img, fmt.Errorf("image %q: a digest is sha256: and 64 hex digits", ref)
		}
		img.Digest = digest
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, img.NewTag = rest[:i], rest[i+1:]
	}
	if rest == "" {
		return img, fmt.Errorf("image %q has no repository", ref)
	}
	if img.NewTag == "" && img.Digest == "" {
		return img, fmt.Errorf("image %q: give a tag or a digest (the base would keep its own tag)", ref)
	}
	img.NewName = rest
	return img, nil
}
