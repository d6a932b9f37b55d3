// Package analysis turns a CanaryApp's analysis metrics into PromQL and
// judges their answers. It is pure: the controller resolves admin templates,
// runs the queries through a metrics.Provider and hands the answers here.
//
// A metric's query is a Go text/template restricted to substitution: text,
// {{ .Var }} and {{ index .Args "key" }}, nothing else (no functions, no
// if/range/define), so rendering cannot loop, call anything or grow past
// the query plus its bounded substitutions; MaxQueryBytes caps the result
// anyway. Template authors are tenants (query) and the platform admin
// (templateRef); the variables are names the API already validated, and
// the arguments are escaped as the content of a PromQL string.
package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/prometheus/common/model"
)

// MaxQueryBytes bounds a rendered query: Prometheus takes queries in a
// form body, and a query this long is no analysis query.
const MaxQueryBytes = 16 << 10

// Vars are the variables of a metric's query template.
type Vars struct {
	// Name and Namespace are the CanaryApp's.
	Name, Namespace string
	// Canary and Primary are the Deployments' names (Istio's
	// destination_workload of their pods).
	Canary, Primary string
	// Service is the app's Service name.
	Service string
	// Interval is the metric's window as a PromQL duration ("30s").
	Interval string
	// Workload is the workload being measured: Canary, or Primary when the
	// query runs for compareToPrimary.
	Workload string
	// Args are a templateRef's arguments, escaped for a PromQL string.
	Args map[string]string
}

// ErrTemplate marks a query template that cannot be used.
var ErrTemplate = errors.New("invalid query template")

// PromDuration writes d as a PromQL duration ("1m30s", "500ms").
func PromDuration(d time.Duration) string { return model.Duration(d).String() }

// Render executes the query template tmpl with vars. Its errors wrap
// ErrTemplate and never contain more of the template than a field name.
func Render(tmpl string, vars Vars) (string, error) {
	t, err := template.New("query").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrTemplate, parseMessage(err))
	}
	keys, err := restricted(t.Tree.Root)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if _, ok := vars.Args[k]; !ok {
			return "", fmt.Errorf("%w: the query needs the argument %q (templateRef.args)", ErrTemplate, k)
		}
	}
	vars.Args = escapeArgs(vars.Args)
	var out limitedBuffer
	if err := t.Execute(&out, vars); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("%w: the rendered query is longer than %d bytes", ErrTemplate, MaxQueryBytes)
		}
		return "", fmt.Errorf("%w: %s", ErrTemplate, execMessage(err))
	}
	return out.String(), nil
}

// restricted accepts only text and actions that print a field of Vars or
// `index .Args "key"`, and returns the argument keys it uses.
func restricted(n *parse.ListNode) ([]string, error) {
	if n == nil {
		return nil, nil
	}
	var keys []string
	for _, node := range n.Nodes {
		switch node := node.(type) {
		case *parse.TextNode, *parse.CommentNode:
		case *parse.ActionNode:
			key, err := allowedPipe(node.Pipe)
			if err != nil {
				return nil, err
			}
			if key != "" {
				keys = append(keys, key)
			}
		default:
			return nil, fmt.Errorf("%w: only {{ .Variable }} and {{ index .Args \"key\" }} are allowed, not %s", ErrTemplate, nodeKind(node))
		}
	}
	return keys, nil
}

// allowedPipe accepts {{ .Field }} and {{ index .Args "key" }}; it returns
// the key of the latter.
func allowedPipe(p *parse.PipeNode) (string, error) {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 {
		return "", fmt.Errorf("%w: only {{ .Variable }} and {{ index .Args \"key\" }} are allowed, not pipelines or variables", ErrTemplate)
	}
	args := p.Cmds[0].Args
	switch {
	case len(args) == 1 && isField(args[0], 1) && args[0].(*parse.FieldNode).Ident[0] != "Args":
		return "", nil
	case len(args) == 3 && isIdent(args[0], "index") && isField(args[1], 1) && args[1].(*parse.FieldNode).Ident[0] == "Args" && isString(args[2]):
		return args[2].(*parse.StringNode).Text, nil
	}
	return "", fmt.Errorf("%w: only {{ .Variable }} and {{ index .Args \"key\" }} are allowed, not functions", ErrTemplate)
}

func isField(n parse.Node, depth int) bool {
	f, ok := n.(*parse.FieldNode)
	return ok && len(f.Ident) == depth
}

func isIdent(n parse.Node, name string) bool {
	i, ok := n.(*parse.IdentifierNode)
	return ok && i.Ident == name
}

func isString(n parse.Node) bool { _, ok := n.(*parse.StringNode); return ok }

func nodeKind(n parse.Node) string {
	switch n.(type) {
	case *parse.IfNode:
		return "if"
	case *parse.RangeNode:
		return "range"
	case *parse.WithNode:
		return "with"
	case *parse.TemplateNode:
		return "template"
	default:
		return "control structures"
	}
}

// parseMessage and execMessage keep text/template's explanation without
// its "template: query:" prefix.
func parseMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "template: query:")
}

func execMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// escapeArgs escapes each argument as the content of a double-quoted
// PromQL string (Go's escapes, which PromQL shares: quotes, backslashes,
// control and invalid bytes), so that it cannot end the string it is
// placed in.
func escapeArgs(args map[string]string) map[string]string {
	out := make(map[string]string, len(args))
	for k, v := range args {
		q := strconv.Quote(v)
		out[k] = q[1 : len(q)-1]
	}
	return out
}

var errTooLong = errors.New("rendered query too long")

// limitedBuffer fails writes past MaxQueryBytes.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxQueryBytes {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}
