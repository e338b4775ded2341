package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGitignore: each form of pattern git reads, negations among them,
// decides as git does; the last pattern that matches wins.
func TestGitignore(t *testing.T) {
	t.Parallel()
	type check struct {
		rel  string
		dir  bool
		want bool
	}
	cases := []struct {
		name   string
		ignore string
		checks []check
	}{
		{"a name at any depth", "*.log\nbuild\n", []check{
			{"a.log", false, true}, {"src/a.log", false, true}, {"a.log.js", false, false},
			{"build", true, true}, {"src/build", false, true}, {"builder", true, false}}},
		{"directories only", "out/\n", []check{{"out", true, true}, {"out", false, false}, {"src/out", true, true}}},
		{"anchored", "/dist\nsrc/gen/*.js\n", []check{
			{"dist", true, true}, {"src/dist", true, false}, {"src/gen/a.js", false, true},
			{"src/gen/sub/a.js", false, false}, {"lib/src/gen/a.js", false, false}}},
		{"negation re-includes", "*.js\n!keep.js\n", []check{
			{"a.js", false, true}, {"keep.js", false, false}, {"src/keep.js", false, false}, {"src/a.js", false, true}}},
		{"the last match wins", "!a.js\n*.js\n", []check{{"a.js", false, true}}},
		{"excluded, re-included, excluded again", "*.js\n!*.js\nsecret.js\n", []check{
			{"a.js", false, false}, {"secret.js", false, true}, {"x/secret.js", false, true}}},
		{"a directory's contents and one back", "dist/*\n!dist/keep.js\n", []check{
			{"dist", true, false}, {"dist/a.js", false, true}, {"dist/keep.js", false, false}}},
		{"a negated directory-only pattern", "logs/*\n!logs/kept/\n", []check{
			{"logs/kept", true, false}, {"logs/kept", false, true}, {"logs/other", true, true}}},
		{"double stars", "**/tmp\na/**/b.js\nvendor/**\n", []check{
			{"tmp", true, true}, {"x/y/tmp", false, true}, {"a/b.js", false, true}, {"a/x/y/b.js", false, true},
			{"c/a/b.js", false, false}, {"vendor/x/y.js", false, true}, {"vendor", true, false}}},
		{"wildcards and classes", "file?.js\n[abc].js\n[!x]y.js\nlit[.js\n[]x].css\n", []check{
			{"file1.js", false, true}, {"file10.js", false, false}, {"a.js", false, true}, {"d.js", false, false},
			{"zy.js", false, true}, {"xy.js", false, false}, {"lit[.js", false, false},
			{"x.css", false, true}, {"].css", false, true}, {"]x.css", false, false}, {"a/b", false, false}}},
		{"a star stays in its part", "src/*.js\n", []check{{"src/a.js", false, true}, {"src/x/a.js", false, false}}},
		{"escapes, comments, blanks and trailing spaces", "# a comment\n\n\\#hash.js\n\\!bang.js\nspaced.js   \nkept\\ \n", []check{
			{"#hash.js", false, true}, {"!bang.js", false, true}, {"spaced.js", false, true},
			{"kept ", false, true}, {"kept", false, false}, {"# a comment", false, false}}},
		{"a lone ! or / is nothing", "!\n/\n", []check{{"a.js", false, false}}},
		{"windows line ends", "*.log\r\n!keep.log\r\n", []check{{"a.log", false, true}, {"keep.log", false, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), ".gitignore")
			if err := os.WriteFile(file, []byte(tc.ignore), 0o600); err != nil {
				t.Fatal(err)
			}
			ignored, err := gitignore(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.checks {
				if got := ignored(c.rel, c.dir); got != c.want {
					t.Errorf("gitignore(%q)(%q, dir %v) = %v, want %v", tc.ignore, c.rel, c.dir, got, c.want)
				}
			}
		})
	}
}

// TestReadScriptDirNegation: push sends a file a negation re-includes, and
// not one whose directory is excluded, whatever a negation says (git's
// rule: the walk never enters the directory).
func TestReadScriptDirNegation(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"index.js":          "export default {}",
		".gitignore":        "*.js\n!index.js\n!src/**/*.js\nsrc/gen/\n!src/gen/kept.js\ndist/*\n!dist/kept.js\n",
		"a.js":              "not sent",
		"src/lib/util.js":   "sent",
		"src/gen/kept.js":   "not sent: its directory is excluded",
		"dist/out.js":       "not sent",
		"dist/kept.js":      "sent",
		"data/greeting.txt": "sent",
	})
	src, err := readScriptDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(src.Modules))
	want := []string{"data/greeting.txt", "dist/kept.js", "index.js", "src/lib/util.js"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("readScriptDir = %v, want %v", got, want)
	}
}
