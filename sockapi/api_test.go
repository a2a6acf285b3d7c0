package sockapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAPIOwnWords: what go doc shows of sockapi (exported functions,
// methods of exported types, exported fields and interface methods,
// exported constants and variables) names no type of another xdpnet
// package but nic's, a package made for users (New takes its links), and
// inline's, the expert API Config.OnPoller hands out. It reads the
// package's source as go doc does, so it needs no build.
func TestAPIOwnWords(t *testing.T) {
	const module = "github.com/xdpnet/xdpnet/"
	allowed := map[string]bool{module + "nic": true, module + "sockapi/inline": true}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		imports := map[string]string{}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			local := path.Base(p)
			if im.Name != nil {
				local = im.Name.Name
			}
			imports[local] = p
		}
		check := func(what string, n ast.Node) {
			checked++
			ast.Inspect(n, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok {
					if p := imports[id.Name]; strings.HasPrefix(p, module) && !allowed[p] {
						t.Errorf("%s: %s shows %s.%s", fset.Position(sel.Pos()), what, id.Name, sel.Sel.Name)
					}
				}
				return true
			})
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && (d.Recv == nil || exportedRecv(d.Recv)) {
					check(d.Name.Name, d.Type)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							checkType(s.Name.Name, s.Type, check)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								check(n.Name, s)
								break
							}
						}
					}
				}
			}
		}
	}
	require.Positive(t, checked, "no exported declaration found")
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(recv *ast.FieldList) bool {
	typ := recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if idx, ok := typ.(*ast.IndexExpr); ok {
		typ = idx.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

// checkType checks what go doc shows of an exported type: a struct's
// exported fields, an interface's exported methods and embedded
// interfaces, or the whole of any other type.
func checkType(name string, typ ast.Expr, check func(string, ast.Node)) {
	var fields *ast.FieldList
	switch t := typ.(type) {
	case *ast.StructType:
		fields = t.Fields
	case *ast.InterfaceType:
		fields = t.Methods
	default:
		check(name, typ)
		return
	}
	for _, f := range fields.List {
		if len(f.Names) == 0 {
			check(name+" (embedded)", f.Type)
			continue
		}
		for _, n := range f.Names {
			if n.IsExported() {
				check(name+"."+n.Name, f.Type)
				break
			}
		}
	}
}
