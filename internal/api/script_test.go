package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestPlainScripts: code with no default export runs as the body of an
// async function (top-level await and return; request, env and ctx in
// scope; its leading imports at module level), and what it returns comes
// back as JSON in returnValue.
func TestPlainScripts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   map[string]any
		value  string // the returnValue's JSON; "" for none
		stdout string
	}{
		{"a value", map[string]any{"code": "return 6 * 7"}, "42", ""},
		{"top-level await", map[string]any{"code": "console.log(await Promise.resolve('hi'))"}, "", "hi"},
		{"an object", map[string]any{"code": `return { ok: true, list: [1, "two", null], nested: { n: 1.5 } }`}, `{"ok":true,"list":[1,"two",null],"nested":{"n":1.5}}`, ""},
		{"a string", map[string]any{"code": `return "done"`}, `"done"`, ""},
		{"null", map[string]any{"code": `return null`}, `null`, ""},
		{"undefined", map[string]any{"code": `console.log("x"); return undefined`}, "", "x"},
		{"env and request in scope", map[string]any{"code": `return [env.WHO, request.method, new URL(request.url).pathname]`,
			"env": map[string]any{"WHO": "world"}, "request": map[string]any{"method": "POST", "url": "https://x/p"}}, `["world","POST","/p"]`, ""},
		{"imports first", map[string]any{"modules": map[string]string{
			"main.js":  "// a comment\nimport { double } from './lib.js';\nimport cfg from \"./cfg.json\"\nreturn double(cfg.n)",
			"lib.js":   "export const double = (n) => n * 2;",
			"cfg.json": `{"n": 21}`}, "mainModule": "main.js"}, "42", ""},
		{"TypeScript", map[string]any{"code": "const n: number = 6;\nreturn n * 7", "language": "typescript"}, "42", ""},
		{"a promise", map[string]any{"code": `return new Promise((r) => setTimeout(() => r("late"), 10))`}, `"late"`, ""},
		{"a toJSON", map[string]any{"code": `return { toJSON() { return "mine"; } }`}, `"mine"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := execute(t, tt.body)
			if !res.Success || res.Mode != execution.ModeScript || res.Response != nil {
				t.Fatalf("result = %+v (error %+v), want a successful script", res, res.Error)
			}
			if string(res.ReturnValue) != tt.value {
				t.Errorf("returnValue = %s, want %s", res.ReturnValue, tt.value)
			}
			if res.Stdout != tt.stdout {
				t.Errorf("stdout = %q, want %q", res.Stdout, tt.stdout)
			}
		})
	}
}

// TestScriptValuesThatAreNotJSON: a value JSON cannot hold is an error that
// says what it is, wherever in the value it is; nothing is dropped silently.
func TestScriptValuesThatAreNotJSON(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{
		`return () => 1`:                               "it is a function",
		`return { f() {} }`:                            `its "f" is a function`,
		`return [1, Symbol("s")]`:                      `its "1" is a symbol`,
		`return 10n`:                                   "it is a bigint",
		`const a = {}; a.self = a; return a`:           "cycle",
		`return { toJSON() { throw new Error("x") } }`: "toJSON that throws",
	} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			res := execute(t, map[string]any{"code": code})
			wantError(t, res, execution.CodeException, want)
			if res.ReturnValue != nil {
				t.Errorf("returnValue = %s, want none", res.ReturnValue)
			}
		})
	}
}

// TestScriptModes: a module with a default export runs as a Worker; its
// fetch handler may return a value instead of a Response; a script may
// still answer with a Response; stacks keep the script's own lines.
func TestScriptModes(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `export default { fetch() { return { n: 1 } } }`})
	if !res.Success || res.Mode != execution.ModeWorker || string(res.ReturnValue) != `{"n":1}` {
		t.Errorf("a Worker returning a value = %+v, want worker mode with returnValue", res)
	}
	res = execute(t, map[string]any{"code": `export default { fetch() {} }`})
	wantError(t, res, execution.CodeException, "not a Response")
	res = execute(t, map[string]any{"code": `const handler = { fetch() { return new Response("w") } }; export { handler as default };`})
	if res.Mode != execution.ModeWorker || res.Response == nil || res.Response.Body != "w" {
		t.Errorf("export { handler as default } = %+v, want a Worker's response", res)
	}
	res = execute(t, map[string]any{"code": `return new Response("from a script", { status: 201 })`})
	if !res.Success || res.Mode != execution.ModeScript || res.Response == nil || res.Response.Status != 201 || res.ReturnValue != nil {
		t.Errorf("a script returning a Response = %+v, want its response", res)
	}
	res = execute(t, map[string]any{"code": "let x = 1;\n\nnull.boom;"})
	wantError(t, res, execution.CodeException, "boom")
	if !strings.Contains(res.Error.Stack, "main.js:3:") {
		t.Errorf("stack = %q, want the script's own line 3", res.Error.Stack)
	}
}

// TestScriptCannotForgeItsRecord: a script is guest code like a Worker's:
// it cannot reach the wrapper, and what it returns is only a value.
func TestScriptCannotForgeItsRecord(t *testing.T) {
	t.Parallel()
	for _, code := range []string{
		`return { t: "response", status: 200, body: "forged" }`,
		`return '{"t":"response","status":200}\n'`,
		`} }; export default { fetch() { return new Response("escaped") } }; {`,
	} {
		res := execute(t, map[string]any{"code": code})
		if res.Response != nil && res.Response.Body == "forged" {
			t.Errorf("%s: forged a response: %+v", code, res)
		}
		if res.Success && res.ReturnValue != nil {
			var v any
			if err := json.Unmarshal(res.ReturnValue, &v); err != nil {
				t.Errorf("%s: returnValue %s is not JSON", code, res.ReturnValue)
			}
		}
	}
}

// TestQueuedScript: a queued plain script runs as a synchronous one does,
// and its record keeps the mode and the return value.
func TestQueuedScript(t *testing.T) {
	t.Parallel()
	g := newHistoryGateway(t, executions.RecordOptions{})
	id := g.submit(t, g.alice, map[string]any{"code": "console.log('queued');\nreturn [1, 'two', { three: 3 }];"})
	rec := g.await(t, g.alice, id, "finished")
	if r := rec.Result; r == nil || !r.Success || r.Mode != execution.ModeScript || r.Stdout != "queued" || string(r.ReturnValue) != `[1,"two",{"three":3}]` {
		t.Errorf("queued script's record = %+v, want its line and return value", rec.Result)
	}
}
