// Command guestbuild minifies the guest-side modules the shim hands every
// guest isolate (worker/src/guest/*.js, the capture wrapper and its
// formatter) with esbuild's Go API into worker/src/guest/min/, the files the
// shim loads: a fresh isolate parses and compiles less. Each file is
// minified on its own, not bundled (they stay separate modules of the
// guest's module map), and the output depends only on the sources and
// esbuild's version in go.mod, so rebuilding from a clean checkout gives the
// committed files byte for byte (a test checks it). `make build` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

func main() {
	dir := flag.String("dir", "worker/src/guest", "the guest sources; the output goes to its min/")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "guestbuild:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	names, err := Sources(os.DirFS(dir))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "min"), 0o755); err != nil {
		return err
	}
	// A file of min/ whose source is gone goes too.
	old, _ := filepath.Glob(filepath.Join(dir, "min", "*.js"))
	for _, path := range old {
		if !slices.Contains(names, filepath.Base(path)) {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	for _, name := range names {
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		out, err := Minify(name, src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "min", name), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}
