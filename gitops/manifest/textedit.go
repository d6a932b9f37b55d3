package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// An edit is expressed as operations on one document of a file. They are
// applied in place, as byte patches of the original text located with the
// parsed nodes' line and column, so that every byte outside the edited
// scalar or the inserted lines stays as it was. When the YAML is shaped in a
// way a patch cannot handle safely (flow style, block or multi-line scalars,
// anchors, tags), the file is instead re-encoded with kyaml, which keeps
// comments and key order but may normalise indentation and quoting.

type opKind int

const (
	// opSet sets key to a string scalar in the mapping at path, adding the
	// key when missing.
	opSet opKind = iota
	// opDelete removes key from the mapping at path.
	opDelete
	// opAppend appends a mapping item to the block sequence under key in the
	// mapping at path, creating the sequence when missing.
	opAppend
	// opRemoveItem removes the items of the sequence under key whose image
	// field is value, and the key when no item is left. Always re-encoded.
	opRemoveItem
)

type op struct {
	kind  opKind
	doc   int   // index of the document in the file
	path  []any // from the document's root mapping: string keys and int sequence indexes
	key   string
	value string      // opSet
	item  [][2]string // opAppend: key/value pairs of the new item, in order
}

// errNotInPlace says that an operation cannot be done as a byte patch.
var errNotInPlace = errors.New("not editable in place")

// editFile returns the file's new content with ops applied.
func editFile(f *sourceFile, ops []op) ([]byte, error) {
	out, err := patchInPlace(f, ops)
	if errors.Is(err, errNotInPlace) {
		return reencode(f, ops)
	}
	return out, err
}

type patch struct {
	start, end int // byte range of the original text to replace
	text       string
	seq        int // order of creation, so inserts at one offset keep op order
}

// text gives line-based access to a file's bytes.
type text struct {
	data  []byte
	lines []int // byte offset of the start of each line
	eol   string
}

func newText(data []byte) *text {
	t := &text{data: data, lines: []int{0}, eol: "\n"}
	for i, b := range data {
		if b == '\n' && i+1 <= len(data) {
			t.lines = append(t.lines, i+1)
		}
	}
	if strings.Contains(string(data), "\r\n") {
		t.eol = "\r\n"
	}
	return t
}

func (t *text) numLines() int { return len(t.lines) }

// line returns line n (1-based) without its line ending.
func (t *text) line(n int) string {
	if n < 1 || n > len(t.lines) {
		return ""
	}
	end := len(t.data)
	if n < len(t.lines) {
		end = t.lines[n] - 1
	}
	return strings.TrimSuffix(string(t.data[t.lines[n-1]:end]), "\r")
}

// offset converts a yaml.v3 position (1-based line, 1-based column counted
// in characters) to a byte offset.
func (t *text) offset(line, col int) (int, bool) {
	l := t.line(line)
	i := 0
	for c := 1; c < col; c++ {
		if i >= len(l) {
			return 0, false
		}
		_, w := utf8.DecodeRuneInString(l[i:])
		i += w
	}
	return t.lines[line-1] + i, true
}

// lineEnd is the offset just past line n's line ending.
func (t *text) lineEnd(n int) int {
	if n < len(t.lines) {
		return t.lines[n]
	}
	return len(t.data)
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

func isFiller(l string) bool {
	s := strings.TrimSpace(l)
	return s == "" || strings.HasPrefix(s, "#")
}

// blockEnd finds where a block collection ends: the byte offset just past
// the last content line after line `from` whose indentation is at least
// minIndent. Blank and comment-only lines after the last content line are
// left to what follows.
func (t *text) blockEnd(from, minIndent int) int {
	last := from
	for n := from + 1; n <= t.numLines(); n++ {
		l := t.line(n)
		if isFiller(l) {
			continue
		}
		if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "...") || indentOf(l) < minIndent {
			break
		}
		last = n
	}
	return t.lineEnd(last)
}

// lastLine is the highest line number used by a node or its children.
func lastLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, lastLine(c))
	}
	return l
}

// insertLines returns the patch text for whole lines inserted at off,
// adding a line break first when off is the end of a file that lacks one.
func (t *text) insertLines(off int, lines []string) string {
	s := strings.Join(lines, t.eol) + t.eol
	if off == len(t.data) && off > 0 && t.data[off-1] != '\n' {
		s = t.eol + s
	}
	return s
}

func patchInPlace(f *sourceFile, ops []op) ([]byte, error) {
	t := newText(f.data)
	var patches []patch
	for i, o := range ops {
		if o.doc < 0 || o.doc >= len(f.docs) {
			return nil, fmt.Errorf("document %d: %w", o.doc, errNotInPlace)
		}
		m, err := walk(f.docs[o.doc], o.path)
		if err != nil {
			return nil, err
		}
		if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 || m.Anchor != "" {
			return nil, fmt.Errorf("%v: not a non-empty block mapping: %w", o.path, errNotInPlace)
		}
		var p patch
		switch o.kind {
		case opSet:
			p, err = t.set(m, o.key, o.value)
		case opDelete:
			p, err = t.del(m, o.key)
		case opAppend:
			p, err = t.appendItem(f.data, m, o.key, o.item)
		case opRemoveItem:
			return nil, fmt.Errorf("removing an item: %w", errNotInPlace)
		}
		if err != nil {
			return nil, err
		}
		p.seq = i
		patches = append(patches, p)
	}
	// Apply from the end so earlier offsets stay valid; at one offset the
	// later operation goes first so that the earlier one ends up first.
	slices.SortFunc(patches, func(a, b patch) int {
		if a.start != b.start {
			return b.start - a.start
		}
		return b.seq - a.seq
	})
	out := slices.Clone(f.data)
	prevStart := len(out) + 1
	for _, p := range patches {
		if p.end > prevStart {
			return nil, fmt.Errorf("overlapping edits: %w", errNotInPlace)
		}
		out = slices.Concat(out[:p.start], []byte(p.text), out[p.end:])
		prevStart = p.start
	}
	return out, nil
}

// walk follows path from a document node to a node.
func walk(doc *yaml.Node, path []any) (*yaml.Node, error) {
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("empty document: %w", errNotInPlace)
		}
		n = n.Content[0]
	}
	for _, p := range path {
		switch p := p.(type) {
		case string:
			v := mapValue(n, p)
			if v == nil {
				return nil, fmt.Errorf("no field %q: %w", p, errNotInPlace)
			}
			n = v
		case int:
			if n.Kind != yaml.SequenceNode || p < 0 || p >= len(n.Content) {
				return nil, fmt.Errorf("no item %d: %w", p, errNotInPlace)
			}
			n = n.Content[p]
		}
	}
	return n, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if _, v := mapEntry(m, key); v != nil {
		return v
	}
	return nil
}

func mapEntry(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func (t *text) set(m *yaml.Node, key, value string) (patch, error) {
	k, v := mapEntry(m, key)
	if k == nil {
		return t.insertField(m, key+": "+formatScalar(value, 0))
	}
	start, end, err := t.scalarSpan(v)
	if err != nil {
		return patch{}, err
	}
	return patch{start: start, end: end, text: formatScalar(value, v.Style)}, nil
}

// insertField adds a "key: value" line at the end of mapping m.
func (t *text) insertField(m *yaml.Node, lines ...string) (patch, error) {
	keyCol := m.Content[0].Column
	off := t.blockEnd(lastLine(m), keyCol-1)
	indent := strings.Repeat(" ", keyCol-1)
	for i := range lines {
		lines[i] = indent + lines[i]
	}
	return patch{start: off, end: off, text: t.insertLines(off, lines)}, nil
}

func (t *text) del(m *yaml.Node, key string) (patch, error) {
	k, v := mapEntry(m, key)
	if k == nil {
		return patch{}, fmt.Errorf("no field %q to delete: %w", key, errNotInPlace)
	}
	if len(m.Content) == 2 || v.Kind != yaml.ScalarNode || v.Line != k.Line || lastLine(v) != k.Line {
		return patch{}, fmt.Errorf("field %q is not a one-line field: %w", key, errNotInPlace)
	}
	l := t.line(k.Line)
	if indentOf(l) != k.Column-1 { // "- key: v" starts a sequence item
		return patch{}, fmt.Errorf("field %q starts a sequence item: %w", key, errNotInPlace)
	}
	if _, _, err := t.scalarSpan(v); err != nil {
		return patch{}, err
	}
	return patch{start: t.lines[k.Line-1], end: t.lineEnd(k.Line)}, nil
}

func (t *text) appendItem(data []byte, m *yaml.Node, key string, item [][2]string) (patch, error) {
	k, seq := mapEntry(m, key)
	if k == nil {
		// New sequence at the end of the mapping, indented like the file's
		// other sequences.
		dash := k8sSeqIndent(data)
		lines := []string{key + ":"}
		lines = append(lines, itemLines(strings.Repeat(" ", dash)+"- ", strings.Repeat(" ", dash+2), item)...)
		return t.insertField(m, lines...)
	}
	if seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 || seq.Anchor != "" {
		return patch{}, fmt.Errorf("%q is not a non-empty block sequence: %w", key, errNotInPlace)
	}
	last := seq.Content[len(seq.Content)-1]
	first := seq.Content[0]
	if first.Kind != yaml.MappingNode || last.Kind != yaml.MappingNode || first.Style&yaml.FlowStyle != 0 || last.Style&yaml.FlowStyle != 0 {
		return patch{}, fmt.Errorf("%q items are not block mappings: %w", key, errNotInPlace)
	}
	// The first item shows the layout: "<indent>-<gap><first key>".
	l := t.line(first.Line)
	prefixEnd, ok := t.offset(first.Line, first.Column)
	if !ok {
		return patch{}, errNotInPlace
	}
	prefix := string(t.data[t.lines[first.Line-1]:prefixEnd])
	if !regexp.MustCompile(`^ *- +$`).MatchString(prefix) || seq.Column-1 != indentOf(l) {
		return patch{}, fmt.Errorf("%q items do not start with \"- key:\": %w", key, errNotInPlace)
	}
	off := t.blockEnd(lastLine(last), last.Column-1)
	lines := itemLines(prefix, strings.Repeat(" ", len(prefix)), item)
	return patch{start: off, end: off, text: t.insertLines(off, lines)}, nil
}

func itemLines(first, rest string, item [][2]string) []string {
	var lines []string
	for i, kv := range item {
		p := rest
		if i == 0 {
			p = first
		}
		lines = append(lines, p+kv[0]+": "+formatScalar(kv[1], 0))
	}
	return lines
}

// k8sSeqIndent is how far a new sequence's dash is indented under its key:
// 2 when the file's sequences are indented ("wide"), else 0.
func k8sSeqIndent(data []byte) int {
	if yaml.DeriveSeqIndentStyle(string(data)) == string(yaml.WideSequenceStyle) {
		return 2
	}
	return 0
}

// scalarSpan returns the byte range of a one-line scalar's source text, and
// errNotInPlace unless that text provably decodes to the node's value.
func (t *text) scalarSpan(v *yaml.Node) (int, int, error) {
	if v.Kind != yaml.ScalarNode || v.Anchor != "" || v.Style&(yaml.TaggedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return 0, 0, fmt.Errorf("scalar at line %d has a tag, anchor or block style: %w", v.Line, errNotInPlace)
	}
	start, ok := t.offset(v.Line, v.Column)
	if !ok {
		return 0, 0, errNotInPlace
	}
	rest := t.line(v.Line)[start-t.lines[v.Line-1]:]
	var raw string
	switch {
	case v.Style&yaml.DoubleQuotedStyle != 0:
		raw = quotedPrefix(rest, '"')
	case v.Style&yaml.SingleQuotedStyle != 0:
		raw = quotedPrefix(rest, '\'')
	default:
		raw = rest
		if i := strings.Index(raw, " #"); i >= 0 {
			raw = raw[:i]
		}
		if i := strings.Index(raw, "\t#"); i >= 0 {
			raw = raw[:i]
		}
		raw = strings.TrimRight(raw, " \t")
	}
	if raw == "" || decodeScalar(raw) != v.Value || (v.Value == "" && v.Style == 0) {
		return 0, 0, fmt.Errorf("scalar at line %d is not a one-line value: %w", v.Line, errNotInPlace)
	}
	return start, start + len(raw), nil
}

// quotedPrefix returns the quoted scalar at the start of s, quotes
// included, or "" when it does not close on this line.
func quotedPrefix(s string, q byte) string {
	if s == "" || s[0] != q {
		return ""
	}
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return s[:i+1]
		}
	}
	return ""
}

// decodeScalar decodes one scalar's source text; "\x00" marks failure so
// it never equals a real value.
func decodeScalar(raw string) string {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+raw+"\n"), &n); err != nil || len(n.Content) == 0 {
		return "\x00"
	}
	v := mapValue(n.Content[0], "v")
	if v == nil || v.Kind != yaml.ScalarNode {
		return "\x00"
	}
	return v.Value
}

// formatScalar renders s as a one-line YAML string scalar, in the given
// style where it can be written that way: plain only when every YAML
// version reads it back as the same string, else double-quoted.
func formatScalar(s string, style yaml.Style) string {
	switch {
	case style&yaml.SingleQuotedStyle != 0 && !strings.ContainsFunc(s, isControl):
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	case style&yaml.DoubleQuotedStyle == 0 && plainSafe(s):
		return s
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a JSON string is a valid YAML double-quoted scalar
	return strings.TrimSuffix(b.String(), "\n")
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\ufeff'
}

// yaml11Special matches plain scalars that YAML 1.1 readers (sigs.k8s.io/yaml
// as used by kubectl and Argo CD) read as a bool, number, null, merge key or
// timestamp even where YAML 1.2 reads a string.
var yaml11Special = regexp.MustCompile(`^(?:` +
	`(?i:y|n|yes|no|true|false|on|off|null|~|<<|=)` +
	`|[-+]?(?:0b[01_]+|0[0-7_]+|0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|[1-9][0-9_]*(?::[0-5]?[0-9])+)` +
	`|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+` +
	`|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?i:inf)|\.(?i:nan)` +
	`|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?` +
	`)$`)

func plainSafe(s string) bool {
	if s == "" || strings.ContainsFunc(s, isControl) || yaml11Special.MatchString(s) {
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+s+"\n"), &n); err != nil || len(n.Content) == 0 {
		return false
	}
	v := mapValue(n.Content[0], "v")
	return v != nil && v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Style == 0 && v.Value == s
}
