package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// packages lists the directories with non-test Go files.
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			pkgs[filepath.Dir(p)] = append(pkgs[filepath.Dir(p)], p)
		}
		return nil
	})
	return pkgs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	root := repoRoot(t)
	for dir, files := range packages(t, root) {
		documented := false
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				documented = true
			}
		}
		if !documented {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s has no doc comment", rel)
		}
	}
}

func imports(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestConfigImportsNoDataplane(t *testing.T) {
	for _, dep := range imports(t, "github.com/govs/govs/internal/config") {
		if strings.Contains(dep, "/internal/dataplane") || strings.HasPrefix(dep, "github.com/cilium/ebpf") || strings.Contains(dep, "/internal/director") {
			t.Errorf("internal/config depends on %s", dep)
		}
	}
	for _, pkg := range []string{"internal/sched", "internal/listing", "internal/api"} {
		for _, dep := range imports(t, "github.com/govs/govs/"+pkg) {
			if strings.HasPrefix(dep, "github.com/cilium/ebpf") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}

// TestNoGlobalLoggingOrInit: libraries inject their logger and have no
// init side effects (cmd/ and tests excepted).
func TestNoGlobalLoggingOrInit(t *testing.T) {
	root := repoRoot(t)
	for dir, files := range packages(t, root) {
		rel, _ := filepath.Rel(root, dir)
		if !strings.HasPrefix(rel, "internal/") {
			continue
		}
		for _, f := range files {
			fset := token.NewFileSet()
			af, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(af, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.FuncDecl:
					if x.Recv == nil && x.Name.Name == "init" {
						t.Errorf("%s: init function", fset.Position(x.Pos()))
					}
				case *ast.SelectorExpr:
					if id, ok := x.X.(*ast.Ident); ok && (id.Name == "log" && (x.Sel.Name == "Printf" || x.Sel.Name == "Println" || x.Sel.Name == "Fatal" || x.Sel.Name == "Fatalf") || id.Name == "slog" && (x.Sel.Name == "Info" || x.Sel.Name == "Warn" || x.Sel.Name == "Error" || x.Sel.Name == "Debug" || x.Sel.Name == "Default")) {
						t.Errorf("%s: global logger %s.%s", fset.Position(x.Pos()), id.Name, x.Sel.Name)
					}
				}
				return true
			})
		}
	}
}
