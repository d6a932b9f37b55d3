// Command funclen counts the production functions of Go source trees and
// lists those longer than a bound, so that "functions over 60 lines" is a
// number anyone can reproduce:
//
//	go run ./hack/funclen              # the whole module, bound 60
//	go run ./hack/funclen -max 40 gitops internal
//
// A function is a func declaration (methods included, function literals
// counted as part of the function around them); its length is the lines from
// "func" to the closing brace. Test files, testdata, vendor and hack/tools
// (modules of their own) are left out.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type long struct {
	pos   token.Position
	name  string
	lines int
}

func main() {
	limit := flag.Int("max", 60, "list functions longer than this many lines")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: funclen [-max N] [dir ...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	fset := token.NewFileSet()
	var total int
	var over []long
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if skipDir(p) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				total++
				start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
				if n := end.Line - start.Line + 1; n > *limit {
					over = append(over, long{start, funcName(fn), n})
				}
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "funclen:", err)
			os.Exit(1)
		}
	}
	sort.Slice(over, func(i, j int) bool { return over[i].lines > over[j].lines })
	for _, l := range over {
		fmt.Printf("%4d  %s:%d  %s\n", l.lines, l.pos.Filename, l.pos.Line, l.name)
	}
	fmt.Printf("%d of %d production functions are over %d lines\n", len(over), total, *limit)
}

// skipDir leaves out what is not this module's production code.
func skipDir(p string) bool {
	base := filepath.Base(p)
	switch {
	case p != "." && strings.HasPrefix(base, "."), base == "vendor", base == "testdata", base == "bin":
		return true
	}
	return filepath.ToSlash(filepath.Clean(p)) == "hack/tools"
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if g, ok := t.(*ast.IndexExpr); ok {
		t = g.X
	}
	if g, ok := t.(*ast.IndexListExpr); ok {
		t = g.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return "(" + id.Name + ")." + fn.Name.Name
	}
	return fn.Name.Name
}
