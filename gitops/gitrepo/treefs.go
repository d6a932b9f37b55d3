package gitrepo

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// treeFS is a kustomize FileSystem that reads a Git tree lazily: a directory's
// files are copied from the object store into an in-memory file system the
// first time a path in (or under) that directory is touched. An edit of one
// manifest in a repository of tens of thousands of files therefore reads only
// the few directories the edit and the kustomize render look at, and never
// needs a checked-out work tree.
//
// Paths are rooted at the repository root: "/apps/web/app.yaml" and
// "apps/web/app.yaml" name the same file.
//
// Entries that the in-memory file system cannot hold (names with characters
// such as spaces, symbolic links, submodules) are not shown; they are kept
// unchanged in the tree that is written back.
type treeFS struct {
	mem   filesys.FileSystem
	store storer.EncodedObjectStorer
	// trees maps an absolute directory to its Git tree's hash; only
	// directories whose parent was loaded (and the root) are known. A tree is
	// decoded only when its directory is loaded.
	trees map[string]plumbing.Hash
	// decoded holds the trees of loaded directories.
	decoded map[string]*object.Tree
	// loaded holds the absolute directories whose entries were copied.
	loaded map[string]bool
	// shown holds the absolute paths of Git entries copied into mem.
	shown map[string]bool
	// err is the first error met while loading, surfaced after the edit
	// because several FileSystem methods cannot return one.
	err error
}

var _ filesys.FileSystem = (*treeFS)(nil)

func newTreeFS(store storer.EncodedObjectStorer, root *object.Tree) *treeFS {
	fs := &treeFS{
		mem:     filesys.MakeFsInMemory(),
		store:   store,
		trees:   map[string]plumbing.Hash{},
		decoded: map[string]*object.Tree{},
		loaded:  map[string]bool{},
		shown:   map[string]bool{},
	}
	if root != nil {
		fs.trees["/"] = root.Hash
		fs.decoded["/"] = root
	} else {
		fs.loaded["/"] = true
	}
	return fs
}

// abs turns any path into a cleaned absolute one.
func abs(p string) string {
	return path.Clean("/" + filepath.ToSlash(p))
}

func (fs *treeFS) fail(err error) {
	if fs.err == nil {
		fs.err = err
	}
}

// load copies the entries of one directory, which must be known, into mem.
func (fs *treeFS) load(dir string) error {
	if fs.loaded[dir] {
		return nil
	}
	h, ok := fs.trees[dir]
	fs.loaded[dir] = true
	if !ok {
		return nil
	}
	tree, ok := fs.decoded[dir]
	if !ok {
		var err error
		if tree, err = object.GetTree(fs.store, h); err != nil {
			return fmt.Errorf("read tree %s: %w", dir, err)
		}
		fs.decoded[dir] = tree
	}
	for _, e := range tree.Entries {
		child := path.Join(dir, e.Name)
		switch e.Mode {
		case filemode.Dir:
			if err := fs.mem.MkdirAll(child); err != nil {
				continue // a name mem cannot hold; the entry is kept as is
			}
			fs.trees[child] = e.Hash
			fs.shown[child] = true
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			data, err := readBlob(fs.store, e.Hash)
			if err != nil {
				return fmt.Errorf("read %s: %w", child, err)
			}
			if err := fs.mem.WriteFile(child, data); err != nil {
				continue // a name mem cannot hold; the entry is kept as is
			}
			fs.shown[child] = true
		}
	}
	return nil
}

// ensure loads every directory from the root down to p, and p itself when
// it is a directory, so that mem answers for p exactly as Git would.
func (fs *treeFS) ensure(p string) {
	p = abs(p)
	dir := "/"
	if err := fs.load(dir); err != nil {
		fs.fail(err)
		return
	}
	if p == "/" {
		return
	}
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		dir = path.Join(dir, part)
		if _, known := fs.trees[dir]; !known {
			return
		}
		if err := fs.load(dir); err != nil {
			fs.fail(err)
			return
		}
	}
}

// ensureAll loads p and everything below it.
func (fs *treeFS) ensureAll(p string) {
	p = abs(p)
	fs.ensure(p)
	if _, known := fs.trees[p]; !known {
		return
	}
	var walk func(dir string)
	walk = func(dir string) {
		if err := fs.load(dir); err != nil {
			fs.fail(err)
			return
		}
		for _, e := range fs.decoded[dir].Entries {
			child := path.Join(dir, e.Name)
			if _, ok := fs.trees[child]; ok {
				walk(child)
			}
		}
	}
	walk(p)
}

func (fs *treeFS) Create(p string) (filesys.File, error) {
	fs.ensure(p)
	return fs.mem.Create(p)
}

func (fs *treeFS) Mkdir(p string) error {
	fs.ensure(p)
	return fs.mem.Mkdir(p)
}

func (fs *treeFS) MkdirAll(p string) error {
	fs.ensure(p)
	return fs.mem.MkdirAll(p)
}

// RemoveAll loads the whole subtree first, so that the written tree knows
// every entry that went away.
func (fs *treeFS) RemoveAll(p string) error {
	fs.ensureAll(p)
	return fs.mem.RemoveAll(p)
}

func (fs *treeFS) Open(p string) (filesys.File, error) {
	fs.ensure(p)
	return fs.mem.Open(p)
}

func (fs *treeFS) IsDir(p string) bool {
	fs.ensure(p)
	return fs.mem.IsDir(p)
}

func (fs *treeFS) ReadDir(p string) ([]string, error) {
	fs.ensure(p)
	return fs.mem.ReadDir(p)
}

func (fs *treeFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	fs.ensure(p)
	return fs.mem.CleanedAbs(p)
}

func (fs *treeFS) Exists(p string) bool {
	fs.ensure(p)
	return fs.mem.Exists(p)
}

// Glob loads the subtree under the pattern's longest literal prefix, then
// matches in memory.
func (fs *treeFS) Glob(pattern string) ([]string, error) {
	prefix := abs(pattern)
	for strings.ContainsAny(prefix, `*?[\`) {
		prefix = path.Dir(prefix)
	}
	fs.ensureAll(prefix)
	return fs.mem.Glob(pattern)
}

func (fs *treeFS) ReadFile(p string) ([]byte, error) {
	fs.ensure(p)
	return fs.mem.ReadFile(p)
}

func (fs *treeFS) WriteFile(p string, data []byte) error {
	fs.ensure(p)
	return fs.mem.WriteFile(p, data)
}

func (fs *treeFS) Walk(p string, walkFn filepath.WalkFunc) error {
	fs.ensureAll(p)
	return fs.mem.Walk(p, walkFn)
}

func readBlob(s storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	obj, err := s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// objectWriter receives the objects of a new tree.
type objectWriter interface {
	SetEncodedObject(plumbing.EncodedObject) (plumbing.Hash, error)
	NewEncodedObject() plumbing.EncodedObject
}

// writeTree writes the blobs and trees that differ from Git into w and
// returns the new root tree hash, whether anything changed, and the paths
// of the files that changed (repository-relative, sorted as visited).
func (fs *treeFS) writeTree(w objectWriter) (plumbing.Hash, bool, []string, error) {
	if fs.err != nil {
		return plumbing.ZeroHash, false, nil, fs.err
	}
	var changed []string
	h, diff, _, err := fs.writeDir(w, "/", fs.decoded["/"], fs.trees["/"], &changed)
	return h, diff, changed, err
}

// writeDir builds the tree of one directory, whose Git tree has hash origHash
// (zero for a new directory) and is orig once decoded. It returns the tree's
// hash, whether it differs from the original, and whether it is empty (Git
// stores no empty trees, so an emptied directory disappears from its parent).
func (fs *treeFS) writeDir(w objectWriter, dir string, orig *object.Tree, origHash plumbing.Hash, changed *[]string) (plumbing.Hash, bool, bool, error) {
	if !origHash.IsZero() && !fs.loaded[dir] {
		// Nothing below was looked at, so nothing below changed; Git
		// holds no empty trees, so it is not empty either.
		return origHash, false, false, nil
	}
	entries := map[string]object.TreeEntry{}
	if orig != nil {
		for _, e := range orig.Entries {
			if fs.shown[path.Join(dir, e.Name)] {
				continue // re-added below from mem if still there
			}
			entries[e.Name] = e
		}
	}
	names, err := fs.mem.ReadDir(dir)
	if err != nil {
		return plumbing.ZeroHash, false, false, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, name := range names {
		child := path.Join(dir, name)
		var origEntry *object.TreeEntry
		if orig != nil {
			if e, err := orig.FindEntry(name); err == nil {
				origEntry = e
			}
		}
		if fs.mem.IsDir(child) {
			var sub *object.Tree
			var subHash plumbing.Hash
			if origEntry != nil && origEntry.Mode == filemode.Dir {
				sub, subHash = fs.decoded[child], origEntry.Hash
			}
			h, _, empty, err := fs.writeDir(w, child, sub, subHash, changed)
			if err != nil {
				return plumbing.ZeroHash, false, false, err
			}
			if !empty {
				entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
			}
			continue
		}
		data, err := fs.mem.ReadFile(child)
		if err != nil {
			return plumbing.ZeroHash, false, false, fmt.Errorf("read %s: %w", child, err)
		}
		mode := filemode.Regular
		if origEntry != nil && origEntry.Mode.IsFile() && origEntry.Mode != filemode.Symlink {
			mode = origEntry.Mode
		}
		h := plumbing.ComputeHash(plumbing.BlobObject, data)
		if origEntry == nil || origEntry.Hash != h || origEntry.Mode != mode {
			if err := writeBlob(w, data); err != nil {
				return plumbing.ZeroHash, false, false, err
			}
			*changed = append(*changed, strings.TrimPrefix(child, "/"))
		}
		entries[name] = object.TreeEntry{Name: name, Mode: mode, Hash: h}
	}
	if orig != nil {
		for _, e := range orig.Entries {
			child := path.Join(dir, e.Name)
			if _, still := entries[e.Name]; !still && e.Mode != filemode.Dir {
				*changed = append(*changed, strings.TrimPrefix(child, "/"))
			}
		}
	}
	tree := &object.Tree{Entries: sortedEntries(entries)}
	obj := w.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, false, false, fmt.Errorf("encode tree %s: %w", dir, err)
	}
	h := obj.Hash()
	if orig != nil && h == orig.Hash {
		return h, false, len(tree.Entries) == 0, nil
	}
	if len(tree.Entries) > 0 {
		if _, err := w.SetEncodedObject(obj); err != nil {
			return plumbing.ZeroHash, false, false, fmt.Errorf("store tree %s: %w", dir, err)
		}
	}
	return h, true, len(tree.Entries) == 0, nil
}

func writeBlob(w objectWriter, data []byte) error {
	obj := w.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(data)))
	wr, err := obj.Writer()
	if err != nil {
		return err
	}
	if _, err := wr.Write(data); err != nil {
		_ = wr.Close()
		return err
	}
	if err := wr.Close(); err != nil {
		return err
	}
	_, err = w.SetEncodedObject(obj)
	return err
}

// sortedEntries orders tree entries as Git does: by name, where a
// directory's name compares as if it ended in '/'.
func sortedEntries(m map[string]object.TreeEntry) []object.TreeEntry {
	out := make([]object.TreeEntry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(out, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	return out
}
