package transpile

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestBundleStripsTypes(t *testing.T) {
	t.Parallel()
	modules := map[string]string{
		"plugin.ts": `import type { Options } from "./types";
import { Color, describe } from "./types.js";
import data from "./data.json";
import { WorkerEntrypoint } from "cloudflare:workers";
const opts = { verbose: true } satisfies Options;
export default {
  fetch(): Response {
    console.log(describe(Color.Green), data.n, opts.verbose, typeof WorkerEntrypoint);
    return new Response("ok");
  },
};`,
		"types.ts": `export interface Options { verbose: boolean }
export enum Color { Red, Green }
export function describe(c: Color): string { return Color[c]; }`,
		"data.json": `{"n": 7}`,
		"unused.ts": `this is not even valid`,
	}
	out, err := Bundle(modules, "plugin.ts")
	if err != nil {
		t.Fatal(err)
	}
	if out.Module != "plugin.js" {
		t.Errorf("Module = %q", out.Module)
	}
	for _, gone := range []string{"interface", "satisfies", ": Color", "import type"} {
		if strings.Contains(out.Code, gone) {
			t.Errorf("output still has %q:\n%s", gone, out.Code)
		}
	}
	for _, kept := range []string{`from "cloudflare:workers"`, "Green", "export"} {
		if !strings.Contains(out.Code, kept) {
			t.Errorf("output lacks %q:\n%s", kept, out.Code)
		}
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	t.Parallel()
	_, err := Bundle(map[string]string{
		"main.ts": "import { x } from \"./lib\";\nexport default { fetch() { return x; } };",
		"lib.ts":  "export const x: number = 1;\nexport const y = ;\n",
	}, "main.ts")
	var e *Error
	if !errors.As(err, &e) || e.File != "lib.ts" || e.Line != 2 || e.Column != 18 {
		t.Fatalf("err = %#v, want lib.ts:2:18", err)
	}
	_, err = Bundle(map[string]string{"main.ts": `import "./missing";`}, "main.ts")
	if !errors.As(err, &e) || !strings.Contains(e.Message, "missing") {
		t.Errorf("missing import: err = %v", err)
	}
}

func TestMapStack(t *testing.T) {
	t.Parallel()
	out, err := Bundle(map[string]string{
		"main.ts": "import { fail } from \"./lib\";\nexport default {\n  fetch(): Response {\n    return fail();\n  },\n};\n",
		"lib.ts":  "type N = number;\nconst n: N = 1;\nexport function fail(): never {\n  throw new Error(\"bad \" + n);\n}\n",
	}, "main.ts")
	if err != nil {
		t.Fatal(err)
	}
	// Find where the throw landed in the bundle and build a stack as V8 would.
	var line, col int
	for i, l := range strings.Split(out.Code, "\n") {
		if c := strings.Index(l, "throw new Error"); c >= 0 {
			line, col = i+1, c+1
		}
	}
	stack := "Error: bad 1\n    at fail (main.js:" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ")\n    at other.js:1:1"
	got := out.MapStack(stack)
	if !strings.Contains(got, "at fail (lib.ts:4:3)") || !strings.Contains(got, "other.js:1:1") {
		t.Errorf("MapStack =\n%s\nwant the frame at lib.ts:4:3", got)
	}
}

func TestDecodeVLQ(t *testing.T) {
	t.Parallel()
	got, err := decodeVLQ("AAgBC") // 0, 0, 16, 1
	if err != nil || len(got) != 4 || got[0] != 0 || got[1] != 0 || got[2] != 16 || got[3] != 1 {
		t.Errorf("decodeVLQ = %v, %v", got, err)
	}
	if _, err := decodeVLQ("g"); err == nil {
		t.Error("truncated VLQ accepted")
	}
}

func TestBundleTypesOnly(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "type T = 1;", "interface I { a: string }\nexport type { I };", "[[[]]];"} {
		out, err := Bundle(map[string]string{"main.ts": src}, "main.ts")
		if err != nil || strings.TrimSpace(out.Code) != "" {
			t.Errorf("Bundle(%q) = %v, %v, want an empty module", src, out, err)
		}
	}
}

func TestBundleName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		modules []string
		main    string
		want    string
	}{
		{[]string{"main.ts"}, "main.ts", "main.js"},
		{[]string{"main.ts", "main.js"}, "main.ts", "main.bundle.js"},
		{[]string{"main.ts", "main.js", "main.bundle.js"}, "main.ts", "main.bundle-2.js"},
		{[]string{"main.ts", "main.js", "main.bundle.js", "main.bundle-2.js"}, "main.ts", "main.bundle-3.js"},
		{[]string{"src/app.mts"}, "src/app.mts", "src/app.js"},
	}
	for _, tt := range tests {
		modules := map[string]string{}
		for _, m := range tt.modules {
			modules[m] = ""
		}
		if got := bundleName(modules, tt.main, nil); got != tt.want {
			t.Errorf("bundleName(%v, %q) = %q, want %q", tt.modules, tt.main, got, tt.want)
		}
	}
}

// TestBundleWithBinaryModules: a relative import naming a binary module
// exactly stays an import, reaching it from where the bundle is (from a
// nested module, and in the child process alike); one naming it otherwise,
// or naming a binary module the execution does not have, is an error.
func TestBundleWithBinaryModules(t *testing.T) {
	t.Parallel()
	modules := map[string]string{
		"src/main.ts":    "import add from \"./lib/add.wasm\";\nimport { sum } from \"./lib/sum\";\nexport default { fetch(): Response { return new Response(String(sum(add))); } };\n",
		"src/lib/sum.ts": "import blob from \"../../assets/blob\";\nimport add2 from \"./add.wasm\";\nexport function sum(m: WebAssembly.Module): number { return (blob as ArrayBuffer).byteLength + (m === add2 ? 1 : 0); }\n",
	}
	binary := []string{"src/lib/add.wasm", "assets/blob"}
	out, err := BundleWith(modules, "src/main.ts", binary)
	if err != nil {
		t.Fatal(err)
	}
	if out.Module != "src/main.js" {
		t.Errorf("bundle named %q, want src/main.js", out.Module)
	}
	for _, want := range []string{`from "./lib/add.wasm"`, `from "../assets/blob"`} {
		if !strings.Contains(out.Code, want) {
			t.Errorf("bundle lacks %s:\n%s", want, out.Code)
		}
	}
	if strings.Contains(out.Code, wasmToken) {
		t.Errorf("bundle keeps a placeholder:\n%s", out.Code)
	}
	child, err := runChild(t.Context(), modules, "src/main.ts", binary)
	if err != nil || child.Code != build(modules, "src/main.ts", binary).Code {
		t.Errorf("runChild = %+v, %v; want the same bundle as in this process", child, err)
	}
	for name, src := range map[string]string{
		"without its extension": "import add from \"./lib/add\";\nexport default add;\n",
		"not one of them":       "import x from \"./lib/mul.wasm\";\nexport default x;\n",
		"from another folder":   "import x from \"./add.wasm\";\nexport default x;\n",
	} {
		if _, err := BundleWith(map[string]string{"src/main.ts": src}, "src/main.ts", binary); err == nil {
			t.Errorf("%s: BundleWith succeeded, want an error", name)
		}
	}
	// Without binary modules nothing changes: an import of one is an error.
	if _, err := Bundle(modules, "src/main.ts"); err == nil {
		t.Error("Bundle without the binary modules succeeded, want an error")
	}
}
