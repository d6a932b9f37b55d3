package gitrepo

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"sigs.k8s.io/kustomize/api/krusty"
)

// buildTree writes files into a fresh tree in store and returns it.
func buildTree(t *testing.T, store *memory.Storage, files map[string]string) *object.Tree {
	t.Helper()
	fs := newTreeFS(store, nil)
	for name, content := range files {
		if err := fs.WriteFile(name, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	h, changed, _, err := fs.writeTree(store)
	if err != nil || !changed {
		t.Fatalf("writeTree: %v (changed %v)", err, changed)
	}
	tree, err := object.GetTree(store, h)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

const (
	baseKustomization = "resources:\n- app.yaml\n"
	baseApp           = "apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: web\nspec:\n  image: ghcr.io/acme/web:v1\n"
	prodKustomization = "resources:\n- ../../base\nnamespace: prod\nimages:\n- name: ghcr.io/acme/web\n  newTag: v2\n"
)

func TestTreeFSRendersKustomizeAcrossDirectories(t *testing.T) {
	store := memory.NewStorage()
	files := map[string]string{
		"base/kustomization.yaml":          baseKustomization,
		"base/app.yaml":                    baseApp,
		"overlays/prod/kustomization.yaml": prodKustomization,
		"unrelated/a/b/c.yaml":             "c: 1\n",
	}
	root := buildTree(t, store, files)
	fs := newTreeFS(store, root)
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "overlays/prod")
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "image: ghcr.io/acme/web:v1") || !strings.Contains(string(out), "namespace: prod") {
		t.Fatalf("render:\n%s", out)
	}
	// Only what the render touched was read.
	if fs.loaded["/unrelated/a"] || fs.loaded["/docs"] {
		t.Fatalf("loaded more than needed: %v", fs.loaded)
	}
	// Rendering changes nothing.
	h, changed, files2, err := fs.writeTree(store)
	if err != nil || changed || h != root.Hash || len(files2) != 0 {
		t.Fatalf("render changed the tree: %v %v %v", changed, files2, err)
	}
}

func TestTreeFSWritesOnlyChanges(t *testing.T) {
	store := memory.NewStorage()
	root := buildTree(t, store, map[string]string{
		"apps/web/app.yaml":   baseApp,
		"apps/web/extra.yaml": "x: 1\n",
		"apps/api/app.yaml":   "api: 1\n",
		"zz/deep/er/file.txt": "z\n",
	})
	root = withOddEntry(t, store, root)
	fs := newTreeFS(store, root)
	if err := fs.WriteFile("apps/web/app.yaml", []byte(strings.Replace(baseApp, "v1", "v2", 1))); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile("apps/web/new/record.yaml", []byte("new: 1\n")); err != nil {
		t.Fatal(err)
	}
	if err := fs.RemoveAll("apps/web/extra.yaml"); err != nil {
		t.Fatal(err)
	}
	out := memory.NewStorage()
	h, changed, files, err := fs.writeTree(out)
	if err != nil || !changed {
		t.Fatalf("writeTree: %v %v", err, changed)
	}
	slices.Sort(files)
	if want := []string{"apps/web/app.yaml", "apps/web/extra.yaml", "apps/web/new/record.yaml"}; !slices.Equal(files, want) {
		t.Fatalf("changed files %v, want %v", files, want)
	}
	// New objects: 2 blobs, trees for apps/web/new, apps/web, apps, root.
	if n := len(out.ObjectStorage.Objects); n != 6 {
		t.Fatalf("wrote %d objects, want 6", n)
	}
	for _, obj := range out.ObjectStorage.Objects {
		if _, err := store.SetEncodedObject(obj); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := object.GetTree(store, h)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if err := tree.Files().ForEach(func(f *object.File) error {
		c, err := f.Contents()
		got[f.Name] = c
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"apps/web/app.yaml":        strings.Replace(baseApp, "v1", "v2", 1),
		"apps/web/new/record.yaml": "new: 1\n",
		"apps/api/app.yaml":        "api: 1\n",
		"docs/has space.md":        "kept as is\n",
		"zz/deep/er/file.txt":      "z\n",
	}
	if len(got) != len(want) {
		t.Fatalf("tree holds %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
	// The unchanged subtrees are shared, not rewritten.
	for _, p := range []string{"zz", "apps/api", "docs"} {
		a, _ := root.Tree(p)
		b, _ := tree.Tree(p)
		if a.Hash != b.Hash {
			t.Fatalf("%s was rewritten", p)
		}
	}
}

func TestTreeFSEmptiedDirectoryDisappears(t *testing.T) {
	store := memory.NewStorage()
	root := buildTree(t, store, map[string]string{"a/only.yaml": "x\n", "b.yaml": "y\n"})
	fs := newTreeFS(store, root)
	if err := fs.RemoveAll("a/only.yaml"); err != nil {
		t.Fatal(err)
	}
	h, changed, _, err := fs.writeTree(store)
	if err != nil || !changed {
		t.Fatal(err)
	}
	tree, _ := object.GetTree(store, h)
	if len(tree.Entries) != 1 || tree.Entries[0].Name != "b.yaml" {
		t.Fatalf("entries %v", tree.Entries)
	}
}

// withOddEntry adds docs/"has space.md", a name the in-memory file system
// cannot hold, to a root tree.
func withOddEntry(t *testing.T, store *memory.Storage, root *object.Tree) *object.Tree {
	t.Helper()
	if err := writeBlob(store, []byte("kept as is\n")); err != nil {
		t.Fatal(err)
	}
	bh := plumbing.ComputeHash(plumbing.BlobObject, []byte("kept as is\n"))
	docs := &object.Tree{Entries: []object.TreeEntry{{Name: "has space.md", Mode: filemode.Regular, Hash: bh}}}
	dobj := store.NewEncodedObject()
	if err := docs.Encode(dobj); err != nil {
		t.Fatal(err)
	}
	dh, _ := store.SetEncodedObject(dobj)
	entries := map[string]object.TreeEntry{"docs": {Name: "docs", Mode: filemode.Dir, Hash: dh}}
	for _, e := range root.Entries {
		entries[e.Name] = e
	}
	nr := &object.Tree{Entries: sortedEntries(entries)}
	robj := store.NewEncodedObject()
	if err := nr.Encode(robj); err != nil {
		t.Fatal(err)
	}
	rh, _ := store.SetEncodedObject(robj)
	tree, err := object.GetTree(store, rh)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}
