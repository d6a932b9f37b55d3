package gitrepo

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
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

// countingStorer counts the bytes read through the readers of the objects it
// hands out.
type countingStorer struct {
	storer.EncodedObjectStorer
	read *int64
}

func (s countingStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	obj, err := s.EncodedObjectStorer.EncodedObject(t, h)
	if err != nil {
		return nil, err
	}
	return countingObject{EncodedObject: obj, read: s.read}, nil
}

type countingObject struct {
	plumbing.EncodedObject
	read *int64
}

func (o countingObject) Reader() (io.ReadCloser, error) {
	r, err := o.EncodedObject.Reader()
	if err != nil {
		return nil, err
	}
	return countingReadCloser{ReadCloser: r, read: o.read}, nil
}

type countingReadCloser struct {
	io.ReadCloser
	read *int64
}

func (r countingReadCloser) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	*r.read += int64(n)
	return n, err
}

// TestTreeFSReadsOnlyWhatIsRead edits a manifest next to a 50 MiB file at the
// repository root, lists and walks the root as a render would: the large
// blob is never read, and the written tree keeps it as it was.
func TestTreeFSReadsOnlyWhatIsRead(t *testing.T) {
	store := memory.NewStorage()
	large := bytes.Repeat([]byte("0123456789abcdef"), 50<<16) // 50 MiB
	root := buildTree(t, store, map[string]string{
		"kustomization.yaml": "resources:\n- apps/web/app.yaml\n",
		"apps/web/app.yaml":  appYAML,
		"README.md":          "hi\n",
	})
	root = withFile(t, store, root, "large.bin", large)
	var read int64
	fs := newTreeFS(countingStorer{EncodedObjectStorer: store, read: &read}, root)

	if _, err := setImage("ghcr.io/acme/web:v2")(fs, nil); err != nil {
		t.Fatal(err)
	}
	names, err := fs.ReadDir("/")
	if err != nil || !slices.Contains(names, "large.bin") || !fs.Exists("large.bin") || fs.IsDir("large.bin") {
		t.Fatalf("root lists %v (%v); large.bin must be there as a file", names, err)
	}
	var walkedSize int64
	if err := fs.Walk("/", func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, "large.bin") {
			walkedSize = info.Size()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if walkedSize != int64(len(large)) {
		t.Fatalf("Walk reports large.bin with %d bytes, want %d", walkedSize, len(large))
	}
	out := memory.NewStorage()
	h, changed, files, err := fs.writeTree(out)
	if err != nil || !changed || strings.Join(files, ",") != "apps/web/app.yaml" {
		t.Fatalf("writeTree: %v changed=%v files=%v", err, changed, files)
	}
	t.Logf("read %d bytes of blobs", read)
	if read >= 1<<20 {
		t.Fatalf("read %d bytes of blobs for a one-file edit; the 50 MiB file was read", read)
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
	orig, _ := root.FindEntry("large.bin")
	kept, err := tree.FindEntry("large.bin")
	if err != nil || kept.Hash != orig.Hash || kept.Mode != orig.Mode {
		t.Fatalf("large.bin became %+v (%v), want %+v", kept, err, orig)
	}
	app, _ := tree.File("apps/web/app.yaml")
	if content, _ := app.Contents(); !strings.Contains(content, "image: ghcr.io/acme/web:v2 #") {
		t.Fatalf("app.yaml is\n%s", content)
	}
}

// TestTreeFSFileTooLarge: a file above the cap cannot be read, by ReadFile
// or Open, and stays in the tree as it was; a file written over it is
// written.
func TestTreeFSFileTooLarge(t *testing.T) {
	store := memory.NewStorage()
	root := buildTree(t, store, map[string]string{"a/big.yaml": strings.Repeat("x", 2048), "a/small.yaml": "s: 1\n"})
	fs := newTreeFS(store, root)
	fs.maxFile = 1024
	if _, err := fs.ReadFile("a/big.yaml"); !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), "a/big.yaml is 2048 bytes") {
		t.Fatalf("ReadFile: %v, want ErrFileTooLarge naming the file", err)
	}
	if _, err := fs.Open("/a/big.yaml"); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("Open: %v, want ErrFileTooLarge", err)
	}
	if data, err := fs.ReadFile("a/small.yaml"); err != nil || string(data) != "s: 1\n" {
		t.Fatalf("small file: %q %v", data, err)
	}
	h, changed, _, err := fs.writeTree(store)
	if err != nil || changed || h != root.Hash {
		t.Fatalf("reading changed the tree: %v %v", changed, err)
	}
	if err := fs.WriteFile("a/big.yaml", []byte("replaced\n")); err != nil {
		t.Fatal(err)
	}
	h, changed, files, err := fs.writeTree(store)
	if err != nil || !changed || strings.Join(files, ",") != "a/big.yaml" {
		t.Fatalf("writeTree after overwrite: %v %v %v", changed, files, err)
	}
	tree, _ := object.GetTree(store, h)
	f, _ := tree.File("a/big.yaml")
	if c, _ := f.Contents(); c != "replaced\n" {
		t.Fatalf("a/big.yaml = %q", c)
	}
}

// withFile adds a file with the given content at the root of a tree.
func withFile(t *testing.T, store *memory.Storage, root *object.Tree, name string, data []byte) *object.Tree {
	t.Helper()
	if err := writeBlob(store, data); err != nil {
		t.Fatal(err)
	}
	entries := map[string]object.TreeEntry{name: {Name: name, Mode: filemode.Regular, Hash: plumbing.ComputeHash(plumbing.BlobObject, data)}}
	for _, e := range root.Entries {
		entries[e.Name] = e
	}
	nr := &object.Tree{Entries: sortedEntries(entries)}
	obj := store.NewEncodedObject()
	if err := nr.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, _ := store.SetEncodedObject(obj)
	tree, err := object.GetTree(store, h)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}
