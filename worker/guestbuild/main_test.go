package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMinifiedGuestModulesAreFresh: what the shim loads into guest isolates
// (src/guest/min/) is exactly what the sources minify to now, and nothing
// else is there. A source changed without `make build` (or `go run
// ./worker/guestbuild`) fails here, not in a guest.
func TestMinifiedGuestModulesAreFresh(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "src", "guest")
	names, err := Sources(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := Minify(name, src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "min", name))
		if err != nil {
			t.Errorf("%s has no minified file: run `make build`: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("min/%s is not what %s minifies to now: run `make build` (or `go run ./worker/guestbuild`) and commit it", name, name)
		}
	}
	built, err := fs.Glob(os.DirFS(dir), "min/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range built {
		if _, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(path, "min/"))); err != nil {
			t.Errorf("%s has no source in src/guest/", path)
		}
	}
}

// TestMinifyKeepsTheSyntax: minifying lowers nothing into helpers (a
// helper or an iterator protocol call would look up what the guest can
// replace), keeps the exports' names, and refuses a source that does not
// parse.
func TestMinifyKeepsTheSyntax(t *testing.T) {
	t.Parallel()
	out, err := Minify("x.js", []byte("export const buffered = { fetch(r) { const { a, ...rest } = r; return a?.b ?? [...rest]; } };\nexport default async function f() { for await (const x of y) await x; }\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export", "buffered", "...", "?.", "??", "for await", "async function"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("minified output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"__spreadValues", "__objRest", "__async", "__forAwait", "\n//"} {
		if strings.Contains(strings.TrimPrefix(string(out), Banner), unwanted) {
			t.Errorf("minified output holds %q:\n%s", unwanted, out)
		}
	}
	if _, err := Minify("bad.js", []byte("export const = 1;")); err == nil {
		t.Error("a source that does not parse minified without an error")
	}
}
