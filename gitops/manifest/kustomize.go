package manifest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// imageEntry is one item of a kustomization's images: list.
type imageEntry struct {
	index                         int
	name, newName, newTag, digest string
	tagSuffix                     bool
}

func imageEntries(k *sourceFile) []imageEntry {
	if len(k.docs) == 0 || len(k.docs[0].Content) == 0 {
		return nil
	}
	l := mapValue(k.docs[0].Content[0], "images")
	if l == nil || l.Kind != yaml.SequenceNode {
		return nil
	}
	var out []imageEntry
	for i, item := range l.Content {
		get := func(key string) string {
			if v := mapValue(item, key); v != nil && v.Kind == yaml.ScalarNode {
				return v.Value
			}
			return ""
		}
		out = append(out, imageEntry{index: i, name: get("name"), newName: get("newName"),
			newTag: get("newTag"), digest: get("digest"), tagSuffix: mapValue(item, "tagSuffix") != nil})
	}
	return out
}

// renderedApp is the target as kustomize renders it, with its rendered
// name and namespace.
type renderedApp struct {
	Rendered
	name, namespace string
}

// renderKustomization builds dir with krusty in memory and finds the
// target among the rendered resources. load has checked every kustomization
// for remote references; fsys enforces the read limits on what krusty reads.
func renderKustomization(fsys *budgetFS, dir string, t Target) (renderedApp, error) {
	fsys.b.nodeLimit = maxKustomizeNodes
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	fsys.b.nodeLimit = 0
	if fsys.b.err != nil {
		return renderedApp{}, fsys.b.err
	}
	if err != nil {
		return renderedApp{}, &Error{Kind: ErrRender, Path: dir, Detail: "kustomize build failed: " + kustomizeProblem(err)}
	}
	var found []*resource.Resource
	notProven := false
	for _, r := range m.Resources() {
		cur := r.CurId()
		id := identity{group: cur.Group, kind: cur.Kind, name: cur.Name, namespace: cur.Namespace}
		if id.matches(t) {
			found = append(found, r)
		}
		notProven = notProven || id.notProven(t)
	}
	switch len(found) {
	case 0:
		if notProven {
			return renderedApp{}, errNotProven(dir, t)
		}
		return renderedApp{}, &Error{Kind: ErrNoDocument, Path: dir,
			Detail: fmt.Sprintf("kustomize build renders no %s", t)}
	case 1:
	default:
		return renderedApp{}, &Error{Kind: ErrAmbiguous, Path: dir,
			Detail: fmt.Sprintf("kustomize build renders %s %d times", t, len(found))}
	}
	r := found[0]
	return renderedApp{Rendered: stateOf(r.YNode()), name: r.GetName(), namespace: r.GetNamespace()}, nil
}

// sourceCandidates finds the source documents a rendered CanaryApp may come
// from. kustomize drops the original name from its output, so a document
// whose name is the rendered one is preferred, then one whose name is part
// of it (namePrefix, nameSuffix), the longest such name first. Apply's
// render check proves the choice.
func sourceCandidates(files []*sourceFile, t Target, app renderedApp) []document {
	var exact, partial []document
	for _, f := range files {
		for i, d := range f.docs {
			if len(d.Content) == 0 {
				continue
			}
			id, ok := identityOf(d.Content[0])
			if !ok || id.group != t.Group || id.kind != t.Kind || id.name == "" {
				continue
			}
			doc := document{file: f, index: i, root: d.Content[0]}
			switch {
			// The rendered app matched the target, DefaultNamespace rule
			// included, so a source without a namespace is the one
			// kustomize rendered into the app's namespace (or left
			// without one, which the caller has proven).
			case id.name == app.name && (id.namespace == "" || id.namespace == app.namespace):
				exact = append(exact, doc)
			case strings.Contains(app.name, id.name):
				if len(partial) > 0 && len(id.name) > len(partial[0].name()) {
					partial = partial[:0]
				}
				if len(partial) == 0 || len(id.name) == len(partial[0].name()) {
					partial = append(partial, doc)
				}
			}
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return partial
}

// matchImageEntry finds the images: entry that produces the current image:
// its name is the source image's repository, or the entry's resulting name
// is the rendered image's repository.
func matchImageEntry(entries []imageEntry, sourceImage, renderedImage string) (imageEntry, bool, error) {
	srcRepo, _, _ := splitImage(sourceImage)
	outRepo, _, _ := splitImage(renderedImage)
	var found []imageEntry
	for _, e := range entries {
		result := e.name
		if e.newName != "" {
			result = e.newName
		}
		if (sourceImage != "" && e.name == srcRepo) || (renderedImage != "" && result == outRepo) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return imageEntry{}, false, nil
	case 1:
		return found[0], true, nil
	default:
		// Numbered, not quoted: the entries are the repository's text.
		var at []string
		for _, e := range found {
			at = append(at, strconv.Itoa(e.index+1))
		}
		return imageEntry{}, false, fmt.Errorf("%d images: entries match the image's repository: entries %s", len(found), strings.Join(at, ", "))
	}
}

// imageEntryOps edits an images: entry so that kustomize produces want.
func imageEntryOps(e imageEntry, want string) []op {
	repo, tag, digest := splitImage(want)
	path := []any{"images", e.index}
	var ops []op
	set := func(key, cur, v string) {
		if cur != v {
			ops = append(ops, op{kind: opSet, path: path, key: key, value: v})
		}
	}
	del := func(key string, present bool) {
		if present {
			ops = append(ops, op{kind: opDelete, path: path, key: key})
		}
	}
	if e.newName != "" || e.name != repo {
		set("newName", e.newName, repo)
	}
	if tag != "" {
		set("newTag", e.newTag, tag)
	} else {
		del("newTag", e.newTag != "")
	}
	if digest != "" {
		set("digest", e.digest, digest)
	} else {
		del("digest", e.digest != "")
	}
	del("tagSuffix", e.tagSuffix)
	return ops
}

// splitImage splits an image reference into repository, tag and digest. A
// colon belongs to the tag only after the last slash, so a registry port
// ("localhost:5000/app:v2") stays in the repository.
func splitImage(ref string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// overlay is a FileSystem that reads edited files from memory, so the
// edit can be rendered and checked before anything is written.
type overlay struct {
	filesys.FileSystem
	files map[string][]byte // by cleaned absolute path
}

func newOverlay(fsys filesys.FileSystem, edits map[string][]byte) *overlay {
	o := &overlay{FileSystem: fsys, files: map[string][]byte{}}
	for p, data := range edits {
		o.files[o.key(p)] = data
	}
	return o
}

func (o *overlay) key(p string) string {
	if dir, file, err := o.FileSystem.CleanedAbs(p); err == nil {
		return filepath.Join(dir.String(), file)
	}
	return filepath.Clean(p)
}

func (o *overlay) ReadFile(p string) ([]byte, error) {
	if data, ok := o.files[o.key(p)]; ok {
		return slices.Clone(data), nil
	}
	return o.FileSystem.ReadFile(p)
}
