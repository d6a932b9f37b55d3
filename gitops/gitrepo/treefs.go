package gitrepo

import (
	"fmt"
	"io"
	"os"
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
// entries are copied from the object store into an in-memory file system the
// first time a path in (or under) that directory is touched, and a file's
// content is read only when the file is read (ReadFile, Open). An edit of one
// manifest in a repository of tens of thousands of files therefore reads only
// the few trees and files the edit and the kustomize render look at, a large
// file next to the manifest is never read, and no work tree is checked out.
// A file larger than maxFile cannot be read (ErrFileTooLarge); it is written
// back as it was.
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
	// unread maps the absolute path of a file that mem holds only as an
	// empty stand-in to its Git blob. Writing the file, or removing it,
	// takes it out; reading it reads the blob into mem first.
	unread map[string]*blobRef
	// maxFile is the largest file a read returns.
	maxFile int64
	// err is the first error met while loading, surfaced after the edit
	// because several FileSystem methods cannot return one.
	err error
}

var _ filesys.FileSystem = (*treeFS)(nil)

// blobRef is a file not read yet: its blob, and its size once asked for.
type blobRef struct {
	hash plumbing.Hash
	size int64 // -1 until known
}

func newTreeFS(store storer.EncodedObjectStorer, root *object.Tree) *treeFS {
	fs := &treeFS{
		mem:     filesys.MakeFsInMemory(),
		store:   store,
		trees:   map[string]plumbing.Hash{},
		decoded: map[string]*object.Tree{},
		loaded:  map[string]bool{},
		shown:   map[string]bool{},
		unread:  map[string]*blobRef{},
		maxFile: DefaultMaxFileSize,
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
			// An empty stand-in: the content is read on first read.
			if err := fs.mem.WriteFile(child, nil); err != nil {
				continue // a name mem cannot hold; the entry is kept as is
			}
			fs.shown[child] = true
			fs.unread[child] = &blobRef{hash: e.Hash, size: -1}
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

// blobSize is the size of an unread file, from the object's header.
func (fs *treeFS) blobSize(b *blobRef) (int64, error) {
	if b.size < 0 {
		n, err := fs.store.EncodedObjectSize(b.hash)
		if err != nil {
			return 0, err
		}
		b.size = n
	}
	return b.size, nil
}

// read fills mem with the content of p when p is an unread file.
func (fs *treeFS) read(p string) error {
	p = abs(p)
	b, ok := fs.unread[p]
	if !ok {
		return nil
	}
	size, err := fs.blobSize(b)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if size > fs.maxFile {
		return &limitError{ErrFileTooLarge, fmt.Sprintf("%s is %s, above the %s limit for files a write-back reads",
			strings.TrimPrefix(p, "/"), mib(size), mib(fs.maxFile))}
	}
	data, err := readBlob(fs.store, b.hash, fs.maxFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if err := fs.mem.WriteFile(p, data); err != nil {
		return err
	}
	delete(fs.unread, p)
	return nil
}

// forget takes p (with all, also everything under it) out of unread once
// mem's copy was replaced or removed: the old content is never needed then.
func (fs *treeFS) forget(p string, all bool) {
	p = abs(p)
	delete(fs.unread, p)
	if !all {
		return
	}
	prefix := strings.TrimSuffix(p, "/") + "/"
	for k := range fs.unread {
		if strings.HasPrefix(k, prefix) {
			delete(fs.unread, k)
		}
	}
}

func (fs *treeFS) Create(p string) (filesys.File, error) {
	fs.ensure(p)
	f, err := fs.mem.Create(p)
	if err == nil {
		fs.forget(p, false)
	}
	return f, err
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
	if err := fs.mem.RemoveAll(p); err != nil {
		return err
	}
	fs.forget(p, true)
	return nil
}

func (fs *treeFS) Open(p string) (filesys.File, error) {
	fs.ensure(p)
	if err := fs.read(p); err != nil {
		return nil, err
	}
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
	if err := fs.read(p); err != nil {
		return nil, err
	}
	return fs.mem.ReadFile(p)
}

func (fs *treeFS) WriteFile(p string, data []byte) error {
	fs.ensure(p)
	if err := fs.mem.WriteFile(p, data); err != nil {
		return err
	}
	fs.forget(p, false)
	return nil
}

// Walk reports the Git sizes of files not read yet, whose stand-ins in mem
// are empty.
func (fs *treeFS) Walk(p string, walkFn filepath.WalkFunc) error {
	fs.ensureAll(p)
	return fs.mem.Walk(p, func(name string, info os.FileInfo, err error) error {
		if err == nil && info != nil && !info.IsDir() {
			if b, ok := fs.unread[abs(name)]; ok {
				size, serr := fs.blobSize(b)
				if serr != nil {
					return walkFn(name, info, fmt.Errorf("read %s: %w", name, serr))
				}
				info = sizedInfo{FileInfo: info, size: size}
			}
		}
		return walkFn(name, info, err)
	})
}

// sizedInfo is a FileInfo with another size.
type sizedInfo struct {
	os.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }

// readBlob reads a blob of at most limit bytes; the object's header was
// checked before, and the limit holds even if the header lied.
func readBlob(s storer.EncodedObjectStorer, h plumbing.Hash, limit int64) ([]byte, error) {
	obj, err := s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &limitError{ErrFileTooLarge, fmt.Sprintf("blob %s is more than %s", h, mib(limit))}
	}
	return data, nil
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
		e, keep, err := fs.writeEntry(w, dir, name, orig, changed)
		if err != nil {
			return plumbing.ZeroHash, false, false, err
		}
		if keep {
			entries[name] = e
		}
	}
	if orig != nil {
		for _, e := range orig.Entries {
			child := path.Join(dir, e.Name)
			if _, still := entries[e.Name]; !still && e.Mode != filemode.Dir {
				*changed = append(*changed, strings.TrimPrefix(child, "/"))
			}
		}
	}
	return storeTree(w, dir, orig, entries)
}

// writeEntry writes what mem holds at name in dir, a directory or a file,
// and returns its tree entry; keep is false for a directory that ended up
// empty. orig is dir's original tree, nil for a new directory.
func (fs *treeFS) writeEntry(w objectWriter, dir, name string, orig *object.Tree, changed *[]string) (e object.TreeEntry, keep bool, err error) {
	child := path.Join(dir, name)
	var origEntry *object.TreeEntry
	if orig != nil {
		if e, err := orig.FindEntry(name); err == nil {
			origEntry = e
		}
	}
	if !fs.mem.IsDir(child) {
		e, err := fs.writeFile(w, child, name, origEntry, changed)
		return e, err == nil, err
	}
	var sub *object.Tree
	var subHash plumbing.Hash
	if origEntry != nil && origEntry.Mode == filemode.Dir {
		sub, subHash = fs.decoded[child], origEntry.Hash
	}
	h, _, empty, err := fs.writeDir(w, child, sub, subHash, changed)
	if err != nil {
		return object.TreeEntry{}, false, err
	}
	return object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}, !empty, nil
}

// writeFile writes the blob of the file at child when it differs from
// origEntry (nil for a new file) and returns its tree entry.
func (fs *treeFS) writeFile(w objectWriter, child, name string, origEntry *object.TreeEntry, changed *[]string) (object.TreeEntry, error) {
	if _, ok := fs.unread[child]; ok && origEntry != nil {
		// Never read, so never changed: the blob stays as it is.
		return *origEntry, nil
	}
	data, err := fs.mem.ReadFile(child)
	if err != nil {
		return object.TreeEntry{}, fmt.Errorf("read %s: %w", child, err)
	}
	mode := filemode.Regular
	if origEntry != nil && origEntry.Mode.IsFile() && origEntry.Mode != filemode.Symlink {
		mode = origEntry.Mode
	}
	h := plumbing.ComputeHash(plumbing.BlobObject, data)
	if origEntry == nil || origEntry.Hash != h || origEntry.Mode != mode {
		if err := writeBlob(w, data); err != nil {
			return object.TreeEntry{}, err
		}
		*changed = append(*changed, strings.TrimPrefix(child, "/"))
	}
	return object.TreeEntry{Name: name, Mode: mode, Hash: h}, nil
}

// storeTree encodes a directory's entries as a tree and stores it unless it
// is empty or the original (orig, nil for a new directory). It returns the
// tree's hash, whether it differs from orig, and whether it is empty.
func storeTree(w objectWriter, dir string, orig *object.Tree, entries map[string]object.TreeEntry) (plumbing.Hash, bool, bool, error) {
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
