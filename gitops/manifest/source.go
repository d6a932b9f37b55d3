package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// sourceFile is one YAML file as read, with its documents parsed over the
// whole file so that node positions are positions in the file.
type sourceFile struct {
	path string
	data []byte
	docs []*yaml.Node // DocumentNode each; empty documents included
}

// document is one matching document in a file.
type document struct {
	file  *sourceFile
	index int
	root  *yaml.Node // the document's top-level mapping
}

func (d document) name() string {
	id, _ := identityOf(d.root)
	return id.name
}

func (d document) String() string {
	return fmt.Sprintf("%s (document %d, line %d)", d.file.path, d.index+1, d.root.Line)
}

func isYAMLFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// kustomizationNames are the file names kustomize recognises, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// readSource reads and parses the file at p through the render's budget.
func readSource(fsys *budgetFS, p string) (*sourceFile, error) {
	where, outside := fsys.locate(p)
	data, err := fsys.ReadFile(p)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, err
		}
		if outside {
			// The FileSystem's error names the file.
			return nil, &Error{Kind: ErrPathNotFound, Path: where, Detail: "a file outside this path cannot be read"}
		}
		return nil, &Error{Kind: ErrPathNotFound, Path: p, Err: err}
	}
	docs, err := parseDocuments(data)
	if err != nil {
		detail := yamlProblem(err)
		if outside {
			detail = "a file outside this path: " + detail
		}
		return nil, &Error{Kind: ErrParse, Path: where, Detail: detail}
	}
	return &sourceFile{path: p, data: data, docs: docs}, nil
}

func parseDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}

// folderFiles lists the YAML files directly in dir, sorted, without the
// kustomization file.
func folderFiles(fsys filesys.FileSystem, dir string) ([]string, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, &Error{Kind: ErrPathNotFound, Path: dir, Err: err}
	}
	var out []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if isYAMLFile(n) && !slices.Contains(kustomizationNames, n) && !fsys.IsDir(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// kustomizationIn returns the kustomization file in dir, or "".
func kustomizationIn(fsys filesys.FileSystem, dir string) string {
	if kps := kustomizationFiles(fsys, dir); len(kps) > 0 {
		return kps[0]
	}
	return ""
}

// kustomizationFiles returns the kustomization files in dir. kustomize
// refuses a folder with more than one.
func kustomizationFiles(fsys filesys.FileSystem, dir string) []string {
	var out []string
	for _, n := range kustomizationNames {
		p := filepath.Join(dir, n)
		if fsys.Exists(p) && !fsys.IsDir(p) {
			out = append(out, p)
		}
	}
	return out
}

// identity is what a document is matched on.
type identity struct{ group, kind, name, namespace string }

func (t Target) String() string {
	ns := t.Namespace
	if ns == "" {
		ns = "*"
	}
	return fmt.Sprintf("%s.%s %s/%s", t.Kind, t.Group, ns, t.Name)
}

func groupOf(apiVersion string) string {
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		return apiVersion[:i]
	}
	return ""
}

func identityOf(root *yaml.Node) (identity, bool) {
	if root == nil || root.Kind != yaml.MappingNode {
		return identity{}, false
	}
	meta, err := yaml.NewRNode(root).GetMeta()
	if err != nil {
		return identity{}, false
	}
	return identity{group: groupOf(meta.APIVersion), kind: meta.Kind, name: meta.Name, namespace: meta.Namespace}, true
}

// matches says whether a document is the target. A document without a
// namespace is applied in the namespace Argo CD (or whoever applies it)
// chooses; it is the target only when the caller has verified that this is
// the app's namespace (Target.DefaultNamespace). Otherwise a document of
// the same name in any team's folder would be.
func (id identity) matches(t Target) bool {
	if !id.named(t) {
		return false
	}
	if id.namespace == "" {
		return t.DefaultNamespace != "" && t.DefaultNamespace == t.Namespace
	}
	return t.Namespace == "" || id.namespace == t.Namespace
}

// named says whether a document has the target's group, kind and name.
func (id identity) named(t Target) bool {
	return id.group == t.Group && id.kind == t.Kind && id.name == t.Name
}

// notProven says whether a document would be the target if the caller had
// proven the app's namespace: it has none of its own, and t has no
// DefaultNamespace.
func (id identity) notProven(t Target) bool {
	return id.named(t) && id.namespace == "" && t.DefaultNamespace == ""
}

// namespaceLess says whether files hold a document that is not the target
// only because t has no DefaultNamespace.
func namespaceLess(files []*sourceFile, t Target) bool {
	for _, f := range files {
		for _, d := range f.docs {
			if len(d.Content) == 0 {
				continue
			}
			if id, ok := identityOf(d.Content[0]); ok && id.notProven(t) {
				return true
			}
		}
	}
	return false
}

// errNotProven is the error for a target that only a document without
// metadata.namespace could be.
func errNotProven(where string, t Target) error {
	detail := fmt.Sprintf("looking for %s", t)
	if t.Namespace != "" {
		detail += fmt.Sprintf("; metadata.namespace: %s in the manifest would prove it", t.Namespace)
	}
	return &Error{Kind: ErrNamespaceNotProven, Path: where, Detail: detail}
}

// findDocuments returns every document in files that matches t.
func findDocuments(files []*sourceFile, t Target) []document {
	var out []document
	for _, f := range files {
		for i, d := range f.docs {
			if len(d.Content) == 0 {
				continue
			}
			if id, ok := identityOf(d.Content[0]); ok && id.matches(t) {
				out = append(out, document{file: f, index: i, root: d.Content[0]})
			}
		}
	}
	return out
}

// oneDocument requires exactly one match. notProven says that a document
// without metadata.namespace would have matched had the caller proven the
// app's namespace.
func oneDocument(docs []document, t Target, where string, searched int, notProven bool) (document, error) {
	switch len(docs) {
	case 0:
		if notProven {
			return document{}, errNotProven(where, t)
		}
		return document{}, &Error{Kind: ErrNoDocument, Path: where,
			Detail: fmt.Sprintf("no %s in %d YAML file(s)", t, searched)}
	case 1:
		return docs[0], nil
	default:
		var at []string
		for _, d := range docs {
			at = append(at, d.String())
		}
		return document{}, &Error{Kind: ErrAmbiguous, Path: where,
			Detail: fmt.Sprintf("%s is defined %d times: %s", t, len(docs), strings.Join(at, ", "))}
	}
}

// stateOf reads the image and failed-image records of a CanaryApp node.
func stateOf(root *yaml.Node) Rendered {
	var r Rendered
	spec := mapValue(root, "spec")
	if v := mapValue(spec, "image"); v != nil && v.Kind == yaml.ScalarNode {
		r.Image = v.Value
	}
	if v := mapValue(spec, "approvedImage"); v != nil && v.Kind == yaml.ScalarNode {
		r.ApprovedImage = v.Value
	}
	if l := mapValue(spec, "failedImages"); l != nil && l.Kind == yaml.SequenceNode {
		for _, item := range l.Content {
			if v := mapValue(item, "image"); v != nil && v.Kind == yaml.ScalarNode {
				r.FailedImages = append(r.FailedImages, v.Value)
			}
		}
	}
	return r
}
