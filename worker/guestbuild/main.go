// Command guestbuild builds the guest-side modules the shim hands every
// guest isolate (worker/src/guest/__dw_*.js: the capture wrapper and its
// formatter, with the helpers they import bundled in) with esbuild's Go API,
// minified, into worker/src/guest/min/, the files the shim loads: a fresh
// isolate parses and compiles less. The output depends only on the sources
// and esbuild's version in go.mod, so rebuilding from a clean checkout gives
// the committed files byte for byte (a test checks it). `make build` runs
// it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
	built, err := Build(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "min"), 0o755); err != nil {
		return err
	}
	// A file of min/ whose module is gone goes too.
	old, _ := filepath.Glob(filepath.Join(dir, "min", "*"))
	for _, path := range old {
		if _, ok := built[filepath.Base(path)]; !ok {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	for name, data := range built {
		if err := os.WriteFile(filepath.Join(dir, "min", name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
