package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestReadScriptDir: push sends package.json and the sources, never
// node_modules, dot files or what .gitignore names, and finds the main
// module.
func TestReadScriptDir(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"package.json":                 `{"name":"app","main":"./src/app.ts","dependencies":{"hono":"^4.6.0"}}`,
		"src/app.ts":                   "export default {}",
		"src/lib/util.js":              "export const x = 1",
		"data/greeting.txt":            "hi",
		"node_modules/hono/index.js":   "not sent",
		"lib/node_modules/x/index.js":  "not sent",
		".env":                         "SECRET=1",
		".gitignore":                   "dist/\n*.log\n/build.js\n# a comment\n",
		"dist/out.js":                  "not sent",
		"debug.log":                    "not sent",
		"build.js":                     "not sent",
		"src/build.js":                 "sent: the anchored pattern is the root's only",
		"README.md":                    "not a module",
		"src/.hidden/secret.js":        "not sent",
		"test/fixtures/main.bundle.js": "sent",
	})
	src, err := readScriptDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(src.Modules))
	want := []string{"data/greeting.txt", "package.json", "src/app.ts", "src/build.js", "src/lib/util.js", "test/fixtures/main.bundle.js"}
	if strings.Join(got, ",") != strings.Join(want, ",") || src.MainModule != "src/app.ts" {
		t.Errorf("readScriptDir = %v, main %q; want %v, main src/app.ts", got, src.MainModule, want)
	}
}
