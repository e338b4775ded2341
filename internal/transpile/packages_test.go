package transpile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBundlePackages: entries are named as imported, share their chunks,
// take the workerd condition, and import their wasm by a path that works
// from where each lands; a subpath that names nothing is dropped.
func TestBundlePackages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"node_modules/pkg/package.json": `{"name":"pkg","version":"1.0.0","type":"module",
			"exports":{".":{"workerd":"./w.js","default":"./d.js"},"./sub":"./lib/sub.js"}}`,
		"node_modules/pkg/w.js":          `import m from "./lib/x.wasm"; import {s} from "./lib/shared.js"; export {m, s}; export default 7;`,
		"node_modules/pkg/d.js":          `export const which = "default condition";`,
		"node_modules/pkg/lib/sub.js":    `import m from "./x.wasm"; export {s} from "./shared.js"; export const mm = m;`,
		"node_modules/pkg/lib/shared.js": `export const s = {};`,
		"node_modules/pkg/lib/x.wasm":    "\x00asm\x01\x00\x00\x00",
	})
	p, err := BundlePackages(t.Context(), dir, []string{"pkg", "pkg/sub", "pkg/nope"})
	if err != nil {
		t.Fatalf("BundlePackages = %v", err)
	}
	if len(p.Dropped) != 1 || p.Dropped[0] != "pkg/nope" {
		t.Errorf("Dropped = %v, want [pkg/nope]", p.Dropped)
	}
	if len(p.Defaults) != 1 || p.Defaults[0] != "pkg" {
		t.Errorf("Defaults = %v, want [pkg]", p.Defaults)
	}
	if len(p.Wasm) != 1 {
		t.Fatalf("Wasm = %d modules, want 1", len(p.Wasm))
	}
	var wasm string
	for name := range p.Wasm {
		wasm = name
	}
	if !strings.Contains(p.Modules["pkg"], `from "./`+wasm+`"`) || !strings.Contains(p.Modules["pkg/sub"], `from "../`+wasm+`"`) {
		t.Errorf("wasm imports not relative to their modules:\npkg: %s\npkg/sub: %s", p.Modules["pkg"], p.Modules["pkg/sub"])
	}
	if strings.Contains(p.Modules["pkg"], "default condition") {
		t.Errorf("pkg took the default condition, not workerd")
	}
	chunks := 0
	for name := range p.Modules {
		if strings.HasPrefix(name, ChunkDir+"/") {
			chunks++
		}
	}
	if chunks != 1 {
		t.Errorf("got %d shared chunks (%v), want 1", chunks, p.Modules)
	}
}

// TestBundlePackagesConfined: a package's fields may name any path; none
// outside the packages is read, whichever field names it.
func TestBundlePackagesConfined(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "secret.js")
	if err := os.WriteFile(secret, []byte("export const leaked = 'SECRET-CONTENT'"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, pkg := range map[string]string{
		"main":    `{"name":"evil","version":"1.0.0","main":"` + secret + `"}`,
		"relmain": `{"name":"evil","version":"1.0.0","main":"../../../../../../../../../..` + secret + `"}`,
		"browser": `{"name":"evil","version":"1.0.0","main":"i.js","browser":{"./i.js":"` + secret + `"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"node_modules/evil/package.json": pkg, "node_modules/evil/i.js": "export const ok = 1"})
			p, err := BundlePackages(t.Context(), dir, []string{"evil"})
			var e *Error
			if err == nil {
				for _, code := range p.Modules {
					if strings.Contains(code, "SECRET-CONTENT") {
						t.Fatalf("BundlePackages read a file outside the packages")
					}
				}
				return // the field was not followed
			}
			if !errors.As(err, &e) || strings.Contains(e.Message, "SECRET") {
				t.Errorf("BundlePackages = %v, want an *Error without the file's content", err)
			}
		})
	}
}

// TestRelative: the specifier from one module to another.
func TestRelative(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ from, to, want string }{
		{"hono", "node_modules/.dw/c.js", "./node_modules/.dw/c.js"},
		{"hono/cors", "node_modules/.dw/c.js", "../node_modules/.dw/c.js"},
		{"@s/p/x", "node_modules/.dw/c.js", "../../node_modules/.dw/c.js"},
		{"node_modules/.dw/a.js", "node_modules/.dw/b.wasm", "./b.wasm"},
		{"lib/hono", "hono", "../hono"},
	} {
		if got := Relative(tt.from, tt.to); got != tt.want {
			t.Errorf("Relative(%q, %q) = %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
}
