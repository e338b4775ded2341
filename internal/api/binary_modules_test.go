package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// addWasm is a WebAssembly module, assembled by hand, exporting
// add(i32, i32) i32: magic and version, then the type, function, export
// and code sections.
var addWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type 0: (i32, i32) -> i32
	0x03, 0x02, 0x01, 0x00, // function 0 has type 0
	0x07, 0x07, 0x01, 0x03, 'a', 'd', 'd', 0x00, 0x00, // export "add" = function 0
	0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b, // local.get 0, local.get 1, i32.add
}

var b64 = base64.StdEncoding.EncodeToString

// TestBinaryModules: a guest imports a .wasm module (compiled by the
// runtime, as Workers refuse to compile raw bytes) and a data module (an
// ArrayBuffer), sent as base64 through the HTTP API, on the real workerd.
func TestBinaryModules(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"modules": map[string]any{
			"main.js": `import add from "./wasm/add.wasm"; import table from "./table.bin";
export default { async fetch() {
  const { exports } = await WebAssembly.instantiate(add);
  console.log(add instanceof WebAssembly.Module, table instanceof ArrayBuffer);
  return new Response(exports.add(20, 22) + ":" + [...new Uint8Array(table)].join(","));
} }`,
			"wasm/add.wasm": map[string]string{"wasm": b64(addWasm)},
			"table.bin":     map[string]string{"data": b64([]byte{0, 1, 254, 255})},
		},
	})
	wantSuccess(t, res)
	if res.Response.Body != "42:0,1,254,255" || res.Stdout != "true true" {
		t.Errorf("body %q, stdout %q; want 42:0,1,254,255 and true true", res.Response.Body, res.Stdout)
	}
}

// TestTypeScriptBinaryModules: TypeScript modules beside binary modules,
// through the HTTP API on the real workerd: the TypeScript is bundled into
// one module that still imports the .wasm and data modules (from a nested
// module too, by the path from where it sits), which reach the Worker
// Loader as they were sent; a stack from the TypeScript maps back to its
// lines, and an import of a binary module the request does not have is a
// syntax_error naming it.
func TestTypeScriptBinaryModules(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"mainModule": "src/main.ts",
		"modules": map[string]any{
			"src/main.ts": `import add from "./wasm/add.wasm";
import { describe } from "./lib/describe";
interface Adder { add(a: number, b: number): number }
export default { async fetch(req: Request): Promise<Response> {
  const { exports } = await WebAssembly.instantiate(add);
  const adder = exports as unknown as Adder;
  if (new URL(req.url).searchParams.has("throw")) throw new Error("typed " + adder.add(1, 1));
  return new Response(adder.add(20, 22) + ":" + describe());
} };`,
			"src/lib/describe.ts": `import table from "../../assets/table.bin";
import again from "../wasm/add.wasm";
export function describe(): string {
  const bytes: Uint8Array = new Uint8Array(table as ArrayBuffer);
  return [...bytes].join(",") + ":" + (again instanceof WebAssembly.Module);
}`,
			"src/wasm/add.wasm": map[string]string{"wasm": b64(addWasm)},
			"assets/table.bin":  map[string]string{"data": b64([]byte{0, 1, 254, 255})},
		},
	})
	wantSuccess(t, res)
	if res.Response.Body != "42:0,1,254,255:true" {
		t.Errorf("body %q, want 42:0,1,254,255:true", res.Response.Body)
	}
	failed := execute(t, map[string]any{
		"modules": map[string]any{
			"main.ts":  "import add from \"./add.wasm\";\nexport default { async fetch(): Promise<Response> {\n  const m: WebAssembly.Module = add;\n  throw new Error(\"from ts \" + (m instanceof WebAssembly.Module));\n} };\n",
			"add.wasm": map[string]string{"wasm": b64(addWasm)},
		},
	})
	if failed.Error == nil || failed.Error.Message != "Error: from ts true" || !strings.Contains(failed.Error.Stack, "main.ts:4:") {
		t.Errorf("error = %+v, want the thrown error with a stack at main.ts:4", failed.Error)
	}
	missing := execute(t, map[string]any{
		"modules": map[string]any{
			"main.ts":  `import add from "./mul.wasm"; export default { fetch(): Response { return new Response(String(add)); } };`,
			"add.wasm": map[string]string{"wasm": b64(addWasm)},
		},
	})
	if missing.Error == nil || missing.Error.Code != execution.CodeSyntaxError || !strings.Contains(missing.Error.Message, "mul.wasm") {
		t.Errorf("import of a missing binary module: %+v, want a syntax_error naming it", missing.Error)
	}
}

// TestBinaryModulesRefused: a binary module that is not what it says, in
// every spelling of the mistake, is refused naming the module, before
// anything runs; its size counts decoded against the code bound.
func TestBinaryModulesRefused(t *testing.T) {
	t.Parallel()
	main := `"main.js": ` + okCode
	wasm := b64(addWasm)
	big := strings.Repeat("A", 4*(testLimits.MaxCodeBytes/3+1)) // decodes to just over the bound
	fits := b64(make([]byte, testLimits.MaxCodeBytes-4096))     // base64 longer than the bound, decoded within it
	tests := []struct {
		name, modules string
		fields        []string
	}{
		{"bad base64", `"a.wasm": {"wasm": "***"}`, []string{"modules.a.wasm:wrong_type"}},
		{"base64 unpadded", `"a.wasm": {"wasm": "` + strings.TrimRight(wasm, "=") + `"}`, []string{"modules.a.wasm:wrong_type"}},
		{"base64 url alphabet", `"d.bin": {"data": "-_-_"}`, []string{"modules.d.bin:wrong_type"}},
		{"bytes as numbers", `"a.wasm": {"wasm": [0, 97, 115, 109]}`, []string{"modules.a.wasm:wrong_type"}},
		{"unknown kind", `"a.wasm": {"binary": "` + wasm + `"}`, []string{"modules.a.wasm:wrong_type"}},
		{"kind in another case", `"a.wasm": {"Wasm": "` + wasm + `"}`, []string{"modules.a.wasm:wrong_type"}},
		{"two kinds", `"a.wasm": {"wasm": "` + wasm + `", "data": "AA=="}`, []string{"modules.a.wasm:wrong_type"}},
		{"empty object", `"a.wasm": {}`, []string{"modules.a.wasm:wrong_type"}},
		{"null", `"a.wasm": null`, []string{"modules.a.wasm:wrong_type"}},
		{"not wasm bytes", `"a.wasm": {"wasm": "` + b64([]byte("export default 1")) + `"}`, []string{"modules.a.wasm:invalid"}},
		{"wasm version 2", `"a.wasm": {"wasm": "` + b64([]byte{0, 'a', 's', 'm', 2, 0, 0, 0}) + `"}`, []string{"modules.a.wasm:invalid"}},
		{"wasm named .js", `"lib.js": {"wasm": "` + wasm + `"}`, []string{"modules.lib.js:invalid"}},
		{"data named .js", `"lib.js": {"data": "AA=="}`, []string{"modules.lib.js:invalid"}},
		{"data named .wasm", `"x.wasm": {"data": "` + wasm + `"}`, []string{"modules.x.wasm:invalid"}},
		{"text named .wasm", `"x.wasm": "` + wasm + `"`, []string{"modules.x.wasm:invalid"}},
		{"reserved name", `"__dw_x.wasm": {"wasm": "` + wasm + `"}`, []string{"modules.__dw_x.wasm:invalid"}},
		{"too large decoded", `"d.bin": {"data": "` + big + `"}`, []string{"modules:too_large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := post(t, "/execute", "application/json", `{"modules": {`+main+`, `+tt.modules+`}}`)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422: %s", resp.StatusCode, data)
			}
			var p api.Problem
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field+":"+e.Code)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("errors = %v (%s), want %v", got, data, tt.fields)
			}
		})
	}
	t.Run("counted decoded", func(t *testing.T) {
		t.Parallel()
		res := execute(t, `{"modules": {"main.js": "import d from './d.bin'; export default { fetch() { return new Response(String(d.byteLength)); } }", "d.bin": {"data": "`+fits+`"}}}`)
		wantSuccess(t, res)
		if want := testLimits.MaxCodeBytes - 4096; res.Response.Body != strconv.Itoa(want) {
			t.Errorf("body = %q, want the data module's %d bytes", res.Response.Body, want)
		}
	})
}

// TestBinaryModulesInScripts: a stored script keeps its binary modules and
// runs them; its version lists them with its other modules.
func TestBinaryModulesInScripts(t *testing.T) {
	t.Parallel()
	alice, _ := scriptsGateway(t, packagestest.New(t))
	src := &client.ScriptSource{Modules: map[string]execution.ModuleSource{
		"index.js": execution.Text(`import add from "./add.wasm"; export default { async fetch() {
  const { exports } = await WebAssembly.instantiate(add); return new Response(String(exports.add(1, 2))); } };`),
		"add.wasm": execution.Binary(execution.ModuleWasm, addWasm),
	}, MainModule: "index.js"}
	v, _, err := alice.PutScript(t.Context(), "adder", src)
	if err != nil || !slices.Equal(v.Modules, []string{"add.wasm", "index.js"}) {
		t.Fatalf("PutScript = %+v, %v; want modules add.wasm and index.js", v, err)
	}
	res, err := alice.Execute(t.Context(), &execution.Request{Script: "adder"})
	if err != nil || res.Response == nil || res.Response.Body != "3" {
		t.Errorf("run adder = %+v, %v; want 3", res, err)
	}
	// A TypeScript script imports them the same way.
	ts := &client.ScriptSource{Modules: map[string]execution.ModuleSource{
		"index.ts": execution.Text(`import add from "./add.wasm"; export default { async fetch(): Promise<Response> {
  const { exports } = await WebAssembly.instantiate(add); return new Response(String((exports as any).add(2, 3))); } };`),
		"add.wasm": execution.Binary(execution.ModuleWasm, addWasm),
	}, MainModule: "index.ts"}
	if _, _, err := alice.PutScript(t.Context(), "ts-adder", ts); err != nil {
		t.Fatalf("PutScript(ts-adder) = %v", err)
	}
	res, err = alice.Execute(t.Context(), &execution.Request{Script: "ts-adder"})
	if err != nil || res.Response == nil || res.Response.Body != "5" {
		t.Errorf("run ts-adder = %+v, %v; want 5", res, err)
	}
}
