package charts_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the values table in charts/canaryop/README.md")

const (
	tableStart = "<!-- values table: generated from values.yaml by make chart-docs -->"
	tableEnd   = "<!-- end of values table -->"
)

// TestValuesTable keeps the README's table of values equal to what the
// comments in values.yaml say, and every value documented.
// make chart-docs (go test ./charts -run TestValuesTable -update) rewrites it.
func TestValuesTable(t *testing.T) {
	dir := chartDir(t)
	values, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rows, undocumented, err := valueRows(values)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range undocumented {
		t.Errorf("values.yaml: %s has no \"# --\" comment", k)
	}
	table := renderTable(rows)

	readmePath := filepath.Join(dir, "README.md")
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(readme), tableStart)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the markers %q and %q", tableStart, tableEnd)
	}
	want := before + tableStart + "\n" + table + tableEnd + after
	if want == string(readme) {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("charts/canaryop/README.md's values table is stale: run `make chart-docs`")
}

type row struct{ key, typ, def, doc string }

// valueRows walks values.yaml. A key with a "# --" comment is one row (its
// whole value the default); a mapping without one is walked into.
func valueRows(values []byte) (rows []row, undocumented []string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(values, &doc); err != nil {
		return nil, nil, err
	}
	var walk func(prefix string, m *yaml.Node) error
	walk = func(prefix string, m *yaml.Node) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			text, documented := docComment(k.HeadComment)
			if !documented {
				if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
					if err := walk(key+".", v); err != nil {
						return err
					}
					continue
				}
				undocumented = append(undocumented, key)
				continue
			}
			def, err := defaultOf(v)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			rows = append(rows, row{key: key, typ: typeOf(v), def: def, doc: text})
		}
		return nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("values.yaml is not a mapping")
	}
	return rows, undocumented, walk("", doc.Content[0])
}

// docComment is the text after "# --" in a head comment, with the lines
// that follow it joined; comment lines before "# --" are not part of it.
func docComment(head string) (string, bool) {
	var parts []string
	in := false
	for _, line := range strings.Split(head, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if text, ok := strings.CutPrefix(line, "--"); ok {
			in = true
			parts = []string{strings.TrimSpace(text)}
			continue
		}
		if in && line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, " "), in
}

func typeOf(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "list"
	}
	switch v.Tag {
	case "!!int":
		return "int"
	case "!!bool":
		return "bool"
	case "!!null":
		return "int"
	}
	return "string"
}

func defaultOf(v *yaml.Node) (string, error) {
	var x any
	if err := v.Decode(&x); err != nil {
		return "", err
	}
	if s, ok := x.(string); ok && s == "" {
		return `""`, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

func renderTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| key | type | default | description |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", r.key, r.typ, strings.ReplaceAll(r.def, "|", `\|`), strings.ReplaceAll(r.doc, "|", `\|`))
	}
	return b.String()
}
