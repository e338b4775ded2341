package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuiltGuestModulesAreFresh: what the shim loads into guest isolates
// (src/guest/min/) is exactly what the sources build to now, and nothing
// else is there. A source changed without `make build` (or `go run
// ./worker/guestbuild`) fails here, not in a guest.
func TestBuiltGuestModulesAreFresh(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "src", "guest")
	built, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range built {
		got, err := os.ReadFile(filepath.Join(dir, "min", name))
		if err != nil {
			t.Errorf("%s was not built: run `make build`: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("min/%s is not what the sources build to now: run `make build` (or `go run ./worker/guestbuild`) and commit it", name)
		}
	}
	files, err := os.ReadDir(filepath.Join(dir, "min"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := built[f.Name()]; !ok {
			t.Errorf("min/%s is no guest module's build", f.Name())
		}
	}
}

// TestBuildKeepsTheSyntax: building lowers nothing into helpers (a helper
// or an iterator protocol call would look up what the guest can replace),
// bundles a helper in, leaves the other guest modules and node: as imports,
// keeps the exports' names, and refuses a source that does not parse.
func TestBuildKeepsTheSyntax(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("helper.js", "export function helperFunction(x) { return `helped ${x}`; }\n")
	write("__dw_a.js", `import options from "./__dw_options.json";
import { helperFunction } from "./helper.js";
export const buffered = { async fetch(r) { const { a, ...rest } = r; for await (const x of y) await x; return a?.b ?? [...rest, helperFunction(options.x), await import("node:async_hooks")]; } };
`)
	built, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 1 {
		t.Fatalf("built %d modules, want __dw_a.js alone", len(built))
	}
	out := strings.TrimPrefix(string(built["__dw_a.js"]), Banner)
	for _, want := range []string{"export", "buffered", "...", "?.", "??", "for await", "async fetch", `"./__dw_options.json"`, `import("node:async_hooks")`, "helped "} {
		if !strings.Contains(out, want) {
			t.Errorf("built module lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"__spread", "__objRest", "__async", "__forAwait", "helper.js", "\n//"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("built module holds %q:\n%s", unwanted, out)
		}
	}
	write("__dw_b.js", "export const = 1;\n")
	if _, err := Build(dir); err == nil {
		t.Error("a source that does not parse built without an error")
	}
}
