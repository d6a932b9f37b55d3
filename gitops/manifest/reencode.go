package manifest

import (
	"bytes"
	"errors"
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// errShape is what reencode reports for a failure of kyaml's node API,
// whose messages print the nodes they were given (the repository's text).
var errShape = errors.New("the YAML around the edit has a shape this edit cannot handle")

// reencode applies ops to a fresh parse of the file with kyaml's node API
// and encodes every document again. Comments and key order survive; the
// indentation of sequences follows the file's dominant style, and scalars
// that were not edited keep their quoting.
func reencode(f *sourceFile, ops []op) ([]byte, error) {
	out, err := reencodeOps(f, ops)
	var own *opError
	if err != nil && !errors.As(err, &own) {
		return nil, errShape
	}
	return out, err
}

// opError is an error of reencode's own, which names only the operation.
type opError struct{ msg string }

func (e *opError) Error() string { return e.msg }

func opErrorf(format string, args ...any) error {
	return &opError{fmt.Sprintf(format, args...)}
}

func reencodeOps(f *sourceFile, ops []op) ([]byte, error) {
	docs, err := parseDocuments(f.data)
	if err != nil {
		return nil, err
	}
	for _, o := range ops {
		if o.doc < 0 || o.doc >= len(docs) {
			return nil, opErrorf("document %d is missing", o.doc)
		}
		root := yaml.NewRNode(docs[o.doc])
		if docs[o.doc].Kind == yaml.DocumentNode {
			root = yaml.NewRNode(docs[o.doc].Content[0])
		}
		m, err := lookupCreate(root, o.path)
		if err != nil {
			return nil, err
		}
		if err := applyOp(m, o); err != nil {
			return nil, err
		}
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if k8sSeqIndent(f.data) == 2 {
		enc.DefaultSeqIndent()
	} else {
		enc.CompactSeqIndent()
	}
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// applyOp applies one operation to the mapping m it addresses.
func applyOp(m *yaml.RNode, o op) error {
	switch o.kind {
	case opSet:
		if v := mapValue(m.YNode(), o.key); v != nil && v.Kind == yaml.ScalarNode {
			// Edit the node itself so its comments stay attached.
			v.Value, v.Tag, v.Anchor = o.value, yaml.NodeTagString, ""
			v.Style = scalarStyle(o.value, v.Style)
			return nil
		}
		s := yaml.NewStringRNode(o.value)
		s.YNode().Style = scalarStyle(o.value, 0)
		return m.PipeE(yaml.SetField(o.key, s))
	case opDelete:
		return m.PipeE(yaml.Clear(o.key))
	case opAppend:
		if v := mapValue(m.YNode(), o.key); v != nil && v.Kind != yaml.SequenceNode {
			// "failedImages:" with no value, or null: replace it.
			if err := m.PipeE(yaml.Clear(o.key)); err != nil {
				return err
			}
		}
		seq, err := m.Pipe(yaml.LookupCreate(yaml.SequenceNode, o.key))
		if err != nil {
			return err
		}
		seq.YNode().Style &^= yaml.FlowStyle
		item := yaml.NewMapRNode(nil)
		for _, kv := range o.item {
			s := yaml.NewStringRNode(kv[1])
			s.YNode().Style = scalarStyle(kv[1], 0)
			if err := item.PipeE(yaml.SetField(kv[0], s)); err != nil {
				return err
			}
		}
		seq.YNode().Content = append(seq.YNode().Content, item.YNode())
	case opRemoveItem:
		return removeItem(m, o.key, o.value)
	}
	return nil
}

// removeItem drops the items of the sequence under key whose image is
// image, and key itself when the sequence ends up empty.
func removeItem(m *yaml.RNode, key, image string) error {
	v := mapValue(m.YNode(), key)
	if v == nil || v.Kind != yaml.SequenceNode {
		return opErrorf("%s is not a list", key)
	}
	kept := v.Content[:0]
	for _, item := range v.Content {
		if iv := mapValue(item, "image"); iv != nil && iv.Kind == yaml.ScalarNode && iv.Value == image {
			continue
		}
		kept = append(kept, item)
	}
	v.Content = kept
	if len(kept) == 0 {
		return m.PipeE(yaml.Clear(key))
	}
	return nil
}

// lookupCreate follows path, creating missing mappings for string keys.
func lookupCreate(root *yaml.RNode, path []any) (*yaml.RNode, error) {
	n := root
	for _, p := range path {
		switch p := p.(type) {
		case string:
			next, err := n.Pipe(yaml.LookupCreate(yaml.MappingNode, p))
			if err != nil {
				return nil, err
			}
			if next == nil {
				return nil, opErrorf("field %q is missing", p)
			}
			n = next
		case int:
			items := n.YNode().Content
			if n.YNode().Kind != yaml.SequenceNode || p < 0 || p >= len(items) {
				return nil, opErrorf("item %d is missing", p)
			}
			n = yaml.NewRNode(items[p])
		}
	}
	if n.YNode().Kind != yaml.MappingNode {
		return nil, opErrorf("%v is not a mapping", path)
	}
	return n, nil
}

// scalarStyle keeps a scalar's quoting when the value can be written that
// way, and quotes values a YAML reader would otherwise not read as this
// string.
func scalarStyle(s string, style yaml.Style) yaml.Style {
	switch {
	case style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
		return style & (yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle)
	case plainSafe(s):
		return 0
	default:
		return yaml.DoubleQuotedStyle
	}
}
