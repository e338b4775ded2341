package gateway_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/dynamic-workers/gateway/"

// TestArchitectureMapIsTrue keeps docs/architecture.md true: every package
// of the module is in its table, and imports of ours only what the table
// says it may.
func TestArchitectureMapIsTrue(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{} // package → what it may import; nil: anything
	row := regexp.MustCompile("(?m)^\\| (`[^|]+`) \\| [^|]+ \\| ([^|]+) \\|$")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		var may []string
		switch rule := strings.TrimSpace(m[2]); rule {
		case "anything":
			may = nil
		case "nothing":
			may = []string{}
		default:
			may = ticked(rule)
		}
		for _, pkg := range ticked(m[1]) {
			allowed[pkg] = may
		}
	}
	for dir, imports := range packages(t) {
		may, listed := allowed[dir]
		if !listed {
			t.Errorf("docs/architecture.md does not list %s", dir)
			continue
		}
		if may == nil {
			continue
		}
		for _, imp := range imports {
			if !slices.Contains(may, imp) {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow it", dir, imp)
			}
		}
	}
}

// ticked returns the `…` spans of s.
func ticked(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// packages maps each directory with non-test Go files to the packages of
// this module they import.
func packages(t *testing.T) map[string][]string {
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(path) == "." {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if _, ok := out[dir]; !ok {
			out[dir] = []string{}
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if rest, ok := strings.CutPrefix(p, module); ok && !slices.Contains(out[dir], rest) {
				out[dir] = append(out[dir], rest)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
