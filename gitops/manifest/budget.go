package manifest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Repository content is not trusted, and the operator's memory is shared by
// every tenant. A YAML file is small, but what a parser builds from it is
// not: anchors and aliases let a few hundred bytes stand for billions of
// nodes, which kyaml's DeAnchor (kustomize) and the YAML-to-JSON conversion
// (kustomizations) really build. Every file a render reads therefore passes
// these limits before anything parses it for its values.
const (
	// maxFileBytes is the largest file a render reads. CanaryApp manifests
	// and kustomizations are a few KiB.
	maxFileBytes = 1 << 20
	// maxRenderBytes bounds all reads of one render, so that many files,
	// or kustomize reading one base through many overlays, cannot add up.
	maxRenderBytes = 16 << 20
	// maxNodes is the most YAML nodes one file may stand for once every
	// alias is replaced by its anchor's value.
	maxNodes = 100_000
	// maxKustomizeNodes is the most nodes all YAML kustomize reads in one
	// build may stand for. krusty is far more costly per node than a parse:
	// a ConfigMap of 10000, 25000 and 50000 nodes took 0.17s, 1.2s and
	// 10.6s and about 1.3 KiB of heap a node (kustomize/api v0.21.2), so
	// one file at maxNodes would cost the operator tens of seconds and over
	// 100 MiB. An app's own manifests are a few thousand nodes.
	maxKustomizeNodes = 25_000
)

// budget is what one Render (or one render inside Apply) has read.
type budget struct {
	read int64
	// nodes counts the nodes of what is read while nodeLimit is set
	// (during the kustomize build).
	nodes, nodeLimit int
	// err is the first limit exceeded. kustomize wraps the errors of the
	// FileSystem in text of its own, so the render reports this one.
	err *Error
}

// budgetFS is the FileSystem of one render: every read of this package and
// of kustomize goes through ReadFile, which enforces the limits.
type budgetFS struct {
	filesys.FileSystem
	root    string // the path the caller gave, for error paths
	rootAbs string // root as an absolute path, once known
	b       *budget
}

func newBudgetFS(fsys filesys.FileSystem, root string) *budgetFS {
	return &budgetFS{FileSystem: fsys, root: root, b: &budget{}}
}

func (f *budgetFS) ReadFile(p string) ([]byte, error) {
	if f.b.err != nil {
		// One refusal ends the render: kustomize may try other files
		// after an error, and none of them is needed any more.
		return nil, f.b.err
	}
	// Look at the size before reading where the FileSystem can tell, so
	// that a huge file on disk is never read into memory.
	if size, ok := fileSize(f.FileSystem, p); ok && size > maxFileBytes {
		return nil, f.fail(p, "the file is larger than 1 MiB")
	}
	data, err := f.FileSystem.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, f.fail(p, "the file is larger than 1 MiB")
	}
	f.b.read += int64(len(data))
	if f.b.read > maxRenderBytes {
		return nil, f.fail(p, "the render reads more than 16 MiB of files")
	}
	if n := structure(data); n > maxNodes {
		// Parsing builds every node, several hundred bytes each: a dense
		// 1 MiB flow sequence costs over 250 MiB before it can be counted.
		return nil, f.fail(p, fmt.Sprintf("the file has more than %d YAML structure characters (line breaks, commas, brackets, - and ? indicators), too many to parse", maxNodes))
	}
	switch n, cyclic := expandedNodes(data); {
	case cyclic:
		return nil, f.fail(p, "a YAML alias refers to a node that contains it")
	case n > maxNodes:
		return nil, f.fail(p, fmt.Sprintf("the file's YAML stands for more than %d nodes once its aliases are expanded", maxNodes))
	case f.b.nodeLimit > 0:
		if f.b.nodes += n; f.b.nodes > f.b.nodeLimit {
			return nil, f.fail(p, fmt.Sprintf("the kustomize build reads YAML that stands for more than %d nodes", f.b.nodeLimit))
		}
	}
	return data, nil
}

func (f *budgetFS) fail(p, detail string) *Error {
	where, outside := f.locate(p)
	if outside {
		detail = "a file outside this path: " + detail
	}
	f.b.err = &Error{Kind: ErrTooLarge, Path: where, Detail: detail}
	return f.b.err
}

// locate returns p when it lies in or under the render's path, else that
// path and outside true: errors name the files of the app's own path, never
// those of other paths in the repository (which may be another team's).
func (f *budgetFS) locate(p string) (where string, outside bool) {
	if f.rootAbs == "" {
		f.rootAbs = absPath(f.FileSystem, f.root)
	}
	base, target := f.rootAbs, absPath(f.FileSystem, p)
	if filepath.IsAbs(base) != filepath.IsAbs(target) {
		base, target = filepath.Clean(f.root), filepath.Clean(p)
	}
	rel, err := filepath.Rel(base, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return f.root, true
	}
	return p, false
}

// absPath is p as the FileSystem resolves it (kustomize reads by absolute
// paths, this package by the caller's), through its folder when p itself
// does not exist, or only cleaned when neither does.
func absPath(fsys filesys.FileSystem, p string) string {
	if dir, file, err := fsys.CleanedAbs(p); err == nil {
		return filepath.Join(dir.String(), file)
	}
	if dir, file, err := fsys.CleanedAbs(filepath.Dir(p)); err == nil {
		return filepath.Join(dir.String(), file, filepath.Base(p))
	}
	return filepath.Clean(p)
}

// fileSize returns the size of a regular file, if the FileSystem says.
func fileSize(fsys filesys.FileSystem, p string) (int64, bool) {
	file, err := fsys.Open(p)
	if err != nil {
		return 0, false
	}
	defer func() { _ = file.Close() }()
	st, err := file.Stat()
	if err != nil || st.IsDir() {
		return 0, false
	}
	return st.Size(), true
}

// structure counts the characters that separate or open YAML nodes: line
// breaks, commas, flow brackets, and "-" and "?" indicators. Every node but
// a document's first lies after one of them, and one of them is followed by
// at most a few, so the count bounds what parsing builds, without parsing.
// Quoted and block scalars are not skipped: they count in full, which only
// errs towards refusing.
func structure(data []byte) int {
	n := 0
	for i, c := range data {
		switch c {
		case '\n', ',', '[', '{':
			n++
		case '\r':
			if i+1 == len(data) || data[i+1] != '\n' {
				n++
			}
		case '-', '?':
			if i+1 == len(data) || strings.IndexByte(" \t\r\n", data[i+1]) >= 0 {
				n++
			}
		}
	}
	return n
}

// expandedNodes counts the nodes data's YAML documents stand for with every
// alias replaced by its anchor's value, without building them: the size of
// an alias is the size of its anchor, memoised, so the count takes time in
// the number of nodes parsed, not in the number they stand for. The count
// stops a little above maxNodes. cyclic is true when an alias lies inside
// the node it refers to, which no expansion ever finishes.
//
// The documents are counted twice, and the larger count is kept: once as
// one YAML stream (how yaml.v3 and the YAML-to-JSON conversion read a file)
// and once cut at "---" lines first (how kyaml's ByteReader reads resources
// for kustomize). The two differ when a block scalar holds a "---" line.
// Text that does not parse as YAML counts as far as it parses: no reader
// builds anything from the rest.
func expandedNodes(data []byte) (n int, cyclic bool) {
	c := nodeCounter{memo: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	whole := c.stream(data)
	docs := kyamlDocuments(data)
	if sameAsWhole(data, docs) {
		return whole, c.cyclic
	}
	var split int
	for _, doc := range docs {
		split += c.stream([]byte(doc))
		if split > maxNodes {
			break
		}
	}
	return max(whole, split), c.cyclic
}

type nodeCounter struct {
	memo   map[*yaml.Node]int
	open   map[*yaml.Node]bool // nodes being counted: an alias to one is a cycle
	cyclic bool
}

// stream counts the documents of one YAML stream.
func (c *nodeCounter) stream(data []byte) int {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	total := 0
	for total <= maxNodes {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break
		}
		total += c.size(&doc)
	}
	return total
}

func (c *nodeCounter) size(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if s, ok := c.memo[n]; ok {
		return s
	}
	if c.open[n] {
		c.cyclic = true
		return maxNodes + 1
	}
	c.open[n] = true
	s := 1
	if n.Kind == yaml.AliasNode {
		s = c.size(n.Alias)
	} else {
		for _, child := range n.Content {
			if s += c.size(child); s > maxNodes {
				s = maxNodes + 1
				break
			}
		}
	}
	delete(c.open, n)
	c.memo[n] = s
	return s
}

// kyamlSeparator is the document separator of kyaml's ByteReader.
var kyamlSeparator = regexp.MustCompile(`\n---.*\n`)

// sameAsWhole says whether kyaml's cut of data is data itself, so that the
// second view need not be parsed.
func sameAsWhole(data []byte, docs []string) bool {
	return len(docs) == 1 && !bytes.Contains(data, []byte("\r\n"))
}

// kyamlDocuments cuts data into documents the way kyaml's ByteReader does
// before it parses each one (sigs.k8s.io/kustomize/kyaml/kio splitDocuments).
func kyamlDocuments(data []byte) []string {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	if s == "" {
		return nil
	}
	var docs []string
	prev := 0
	for _, loc := range kyamlSeparator.FindAllStringIndex(s, -1) {
		docs = append(docs, s[prev:loc[0]]+"\n")
		prev = loc[1]
	}
	return append(docs, s[prev:])
}
