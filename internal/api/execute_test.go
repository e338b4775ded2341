// End-to-end tests of POST /execute against the real runtime, one behaviour
// each (results, errors, env, secrets, requests, limits). Over 400 lines
// because it is the endpoint's whole contract; the helpers live in
// api_test.go.
package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

func TestConsoleLevelsAndFormatting(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `
export default {
  fetch() {
    console.log("%s is %d years", "Bob", 42);
    console.info({ a: 1, b: [1, 2, "x"], c: { d: { e: { f: 1 } } } });
    console.debug("%o|%O|%j|%i|%f|%%|%c", [1], { k: "v" }, { j: 1 }, 4.9, "2.5", "css");
    console.warn("warned", null, undefined, 10n, Symbol("s"));
    console.error(new Map([["k", 1]]), new Set([1]), [1, , 3]);
    console.log("multi\nline");
    return new Response("ok");
  },
};`})
	wantSuccess(t, res)
	want := []struct{ level, stream, message string }{
		{"log", "stdout", "Bob is 42 years"},
		{"info", "stdout", "{ a: 1, b: [ 1, 2, 'x' ], c: { d: { e: [Object] } } }"},
		{"debug", "stdout", "[ 1, [length]: 1 ]|{ k: 'v' }|{\"j\":1}|4|2.5|%|"},
		{"warn", "stderr", "warned null undefined 10n Symbol(s)"},
		{"error", "stderr", "Map(1) { 'k' => 1 } Set(1) { 1 } [ 1, <1 empty item>, 3 ]"},
		{"log", "stdout", "multi\nline"},
	}
	if len(res.Logs) != len(want) {
		t.Fatalf("got %d logs %+v, want %d", len(res.Logs), res.Logs, len(want))
	}
	for i, w := range want {
		got := res.Logs[i]
		if got.Level != w.level || got.Stream != w.stream || got.Message != w.message {
			t.Errorf("logs[%d] = %s/%s %q, want %s/%s %q", i, got.Level, got.Stream, got.Message, w.level, w.stream, w.message)
		}
	}
	wantStdout := "Bob is 42 years\n" + want[1].message + "\n" + want[2].message + "\nmulti\nline"
	if res.Stdout != wantStdout {
		t.Errorf("stdout = %q, want %q", res.Stdout, wantStdout)
	}
	if res.Stderr != want[3].message+"\n"+want[4].message {
		t.Errorf("stderr = %q", res.Stderr)
	}
}

func TestTopLevelAndAsyncLogs(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `
console.log("top-level 1");
await Promise.resolve();
console.warn("top-level 2");
export default {
  async fetch(request, env, ctx) {
    console.log("in fetch");
    await new Promise((r) => setTimeout(r, 20));
    console.log("after timer");
    await fetch; // a non-promise await
    ctx.waitUntil((async () => {
      await new Promise((r) => setTimeout(r, 20));
      console.log("from waitUntil");
    })());
    return new Response("ok");
  },
};`})
	wantSuccess(t, res)
	var got []string
	for _, l := range res.Logs {
		got = append(got, l.Message)
	}
	want := "top-level 1|top-level 2|in fetch|after timer|from waitUntil"
	if strings.Join(got, "|") != want {
		t.Errorf("logs = %q, want %q", strings.Join(got, "|"), want)
	}
	for i := 1; i < len(res.Logs); i++ {
		if res.Logs[i].Time.Before(res.Logs[i-1].Time) {
			t.Errorf("log times go backwards: %v then %v", res.Logs[i-1].Time, res.Logs[i].Time)
		}
	}
}

func TestGuestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		code     string
		want     execution.Code
		contains string
		stack    string // a substring the stack must contain, if any
		logs     int
	}{
		{"throw in fetch", `export default { fetch() { console.log("before"); throw new RangeError("nope"); } }`, execution.CodeException, "RangeError: nope", "main.js:1", 1},
		{"rejected promise", `export default { async fetch() { await null; return Promise.reject(new Error("async nope")); } }`, execution.CodeException, "Error: async nope", "", 0},
		{"throw non-error", `export default { fetch() { throw { reason: 42 }; } }`, execution.CodeException, "42", "", 0},
		{"top-level throw", `console.log("loading"); throw new Error("top boom"); export default {};`, execution.CodeException, "Error: top boom", "main.js", 1},
		{"syntax error", `export default { fetch( { return 1 } }`, execution.CodeSyntaxError, "SyntaxError", "main.js:1", 0},
		{"no default export", `export const x = 1;`, execution.CodeInvalidModule, "no default export", "", 0},
		{"default without fetch", `export default { other() {} };`, execution.CodeInvalidModule, "no default export", "", 0},
		{"missing import", `import x from "./nope.js"; export default { fetch() {} };`, execution.CodeInvalidModule, "nope.js", "", 0},
		{"returns nothing", `export default { fetch() { console.log("hi"); } }`, execution.CodeException, "not a Response", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := execute(t, map[string]any{"code": tt.code})
			wantError(t, res, tt.want, tt.contains)
			if tt.stack != "" && !strings.Contains(res.Error.Stack, tt.stack) {
				t.Errorf("stack = %q, want it to contain %q", res.Error.Stack, tt.stack)
			}
			if len(res.Logs) != tt.logs {
				t.Errorf("got %d logs %+v, want %d", len(res.Logs), res.Logs, tt.logs)
			}
		})
	}
}

// TestSyntaxErrorLocation checks that syntax errors name their module, line
// and column also under new_module_registry (default from 2026-11-17), whose
// lazily compiled modules report none by themselves.
func TestSyntaxErrorLocation(t *testing.T) {
	t.Parallel()
	for _, date := range []string{"2026-11-16", "2026-11-17"} {
		res := execute(t, map[string]any{
			"modules": map[string]string{
				"main.js": `import "./lib.js"; export default { fetch() {} };`,
				"lib.js":  "console.log('lib');\nlet x = ;",
			},
			"compatibilityDate": date,
		})
		wantError(t, res, execution.CodeSyntaxError, "Unexpected token")
		if !strings.Contains(res.Error.Stack, "lib.js:2:") {
			t.Errorf("date %s: stack = %q, want it to point at lib.js line 2", date, res.Error.Stack)
		}
		if len(res.Logs) != 0 {
			t.Errorf("date %s: logs = %+v, want none (no guest code runs)", date, res.Logs)
		}
	}
}

func TestClassEntrypoint(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `
import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  async fetch(request) {
    console.log("class", this.env.NAME, new URL(request.url).pathname);
    return new Response("from class");
  }
}`, "env": map[string]any{"NAME": "n"}, "request": map[string]any{"url": "/p"}})
	wantSuccess(t, res)
	if res.Stdout != "class n /p" || res.Response.Body != "from class" {
		t.Errorf("stdout, body = %q, %q", res.Stdout, res.Response.Body)
	}
}

func TestRequestFieldsReachTheGuest(t *testing.T) {
	t.Parallel()
	binary := []byte{0, 1, 2, 250, 251, 255}
	res := execute(t, map[string]any{
		"code": `
export default {
  async fetch(request, env) {
    const body = new Uint8Array(await request.arrayBuffer());
    return Response.json({
      method: request.method,
      url: request.url,
      header: request.headers.get("x-custom"),
      body: Array.from(body),
      env: { str: env.STR, num: env.NUM, bool: env.BOOL, obj: env.OBJ, secret: env.TOKEN },
    });
  },
};`,
		"env":     map[string]any{"STR": "s", "NUM": 1.5, "BOOL": true, "OBJ": map[string]any{"nested": []int{1, 2}}},
		"secrets": map[string]string{"TOKEN": "hunter2"},
		"request": map[string]any{
			"method":       "put",
			"url":          "https://example.com/a/b?q=1",
			"headers":      map[string]string{"X-Custom": "yes"},
			"body":         base64.StdEncoding.EncodeToString(binary),
			"bodyEncoding": "base64",
		},
		"timeoutMs": 5000,
		"limits":    map[string]int{"cpuMs": 50, "subRequests": 5},
		"isolate":   "fresh",
		"language":  "javascript",
	})
	wantSuccess(t, res)
	want := `{"method":"PUT","url":"https://example.com/a/b?q=1","header":"yes","body":[0,1,2,250,251,255],` +
		`"env":{"str":"s","num":1.5,"bool":true,"obj":{"nested":[1,2]},"secret":"[REDACTED]"}}`
	if res.Response.Body != want {
		t.Errorf("guest saw %s\nwant %s", res.Response.Body, want)
	}
	if res.Response.Headers["content-type"] != "application/json" {
		t.Errorf("content-type = %q", res.Response.Headers["content-type"])
	}
}

func TestUTF8RequestBody(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"code":    `export default { async fetch(r) { return new Response((await r.text()).toUpperCase()); } }`,
		"request": map[string]any{"method": "POST", "url": "/", "body": "héllo wörld"},
	})
	wantSuccess(t, res)
	if res.Response.Body != "HÉLLO WÖRLD" {
		t.Errorf("body = %q", res.Response.Body)
	}
}

func TestResponseBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, code, body, encoding string
		status                     int
	}{
		{"binary", `new Response(new Uint8Array([0xff, 0x00, 0xfe]), { status: 418 })`, "/wD+", "base64", 418},
		{"utf8", `new Response("snow ☃", { status: 201 })`, "snow ☃", "utf8", 201},
		{"empty", `new Response(null, { status: 204 })`, "", "utf8", 204},
		{"stream", `new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("a")); c.enqueue(new TextEncoder().encode("b")); c.close(); } }))`, "ab", "utf8", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := execute(t, map[string]any{"code": "export default { fetch() { return " + tt.code + "; } }"})
			wantSuccess(t, res)
			r := res.Response
			if r.Status != tt.status || r.Body != tt.body || r.BodyEncoding != tt.encoding {
				t.Errorf("response = %d %q %s, want %d %q %s", r.Status, r.Body, r.BodyEncoding, tt.status, tt.body, tt.encoding)
			}
		})
	}
}

func TestResponseBodyCap(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": fmt.Sprintf(`export default { fetch() { return new Response("x".repeat(%d)); } }`, testLimits.MaxResponseBytes+100)})
	wantSuccess(t, res)
	if !res.Truncated || int64(len(res.Response.Body)) != testLimits.MaxResponseBytes {
		t.Errorf("truncated = %v, body length = %d, want true and %d", res.Truncated, len(res.Response.Body), testLimits.MaxResponseBytes)
	}
}

func TestModules(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"modules": map[string]string{
			"data/config.json": `{"greeting": "hello", "n": [1, 2]}`,
			"lib/util.js":      `import cfg from "../data/config.json"; export const greet = (who) => cfg.greeting + " " + who;`,
			"notes.txt":        "plain text",
			"src/main.js":      `import { greet } from "../lib/util.js"; import notes from "../notes.txt"; export default { fetch() { console.log(greet("world"), notes); return new Response("ok"); } };`,
		},
		"mainModule": "src/main.js",
	})
	wantSuccess(t, res)
	if res.Stdout != "hello world plain text" {
		t.Errorf("stdout = %q", res.Stdout)
	}

	// Without mainModule, the first .js module in the object is the entry.
	raw := `{"modules": {"b.json": "{}", "entry.js": "export default { fetch() { return new Response('entry'); } }", "other.js": "export default { fetch() { return new Response('other'); } }"}}`
	res = execute(t, raw)
	wantSuccess(t, res)
	if res.Response.Body != "entry" {
		t.Errorf("body = %q, want the first .js module to run", res.Response.Body)
	}
}

func TestNoStateSharedBetweenExecutions(t *testing.T) {
	t.Parallel()
	code := `
globalThis.counter = (globalThis.counter ?? 0) + 1;
let local = 0;
export default { fetch() { local++; console.log(globalThis.counter, local); return new Response(String(globalThis.counter)); } };`
	for i := range 3 {
		res := execute(t, map[string]any{"code": code})
		wantSuccess(t, res)
		if res.Stdout != "1 1" {
			t.Fatalf("execution %d: stdout = %q, want %q (fresh isolate)", i, res.Stdout, "1 1")
		}
	}
}

func TestParallelExecutionsKeepTheirOwnLogs(t *testing.T) {
	t.Parallel()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res := execute(t, map[string]any{"code": fmt.Sprintf(`
console.log("top %[1]d");
export default {
  async fetch(request, env) {
    for (let j = 0; j < 5; j++) {
      console.log("exec %[1]d line " + j + " env " + env.ME);
      await new Promise((r) => setTimeout(r, Math.random() * 10));
    }
    return new Response("done %[1]d");
  },
};`, i), "env": map[string]any{"ME": i}})
			if !res.Success {
				t.Errorf("execution %d failed: %+v", i, res.Error)
				return
			}
			want := fmt.Sprintf("top %d", i)
			for j := range 5 {
				want += fmt.Sprintf("\nexec %d line %d env %d", i, j, i)
			}
			if res.Stdout != want || res.Response.Body != fmt.Sprintf("done %d", i) {
				t.Errorf("execution %d: stdout = %q, body = %q", i, res.Stdout, res.Response.Body)
			}
		})
	}
	wg.Wait()
}

func TestCompatibility(t *testing.T) {
	t.Parallel()
	nodeCode := `import { Buffer } from "node:buffer"; export default { fetch() { return new Response(Buffer.from("hi").toString("hex")); } };`
	res := execute(t, map[string]any{"code": nodeCode, "compatibilityDate": "2024-09-23", "compatibilityFlags": []string{"nodejs_compat"}})
	wantSuccess(t, res)
	if res.Response.Body != "6869" {
		t.Errorf("body = %q, want 6869", res.Response.Body)
	}
	// Without nodejs_compat on an old date, node: modules do not exist.
	res = execute(t, map[string]any{"code": nodeCode, "compatibilityDate": "2024-04-01"})
	wantError(t, res, execution.CodeInvalidModule, "node:buffer")
}

func TestOutbound(t *testing.T) {
	t.Parallel()
	hits := make(chan struct{}, 10)
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- struct{}{}
		fmt.Fprint(w, "secret internal data")
	}))
	defer local.Close()
	code := fmt.Sprintf(`
export default {
  async fetch() {
    try {
      const r = await fetch(%q);
      return new Response("reached: " + await r.text());
    } catch (err) {
      console.error("fetch failed:", err.message);
      return new Response("blocked");
    }
  },
};`, local.URL)
	for _, allow := range []any{false, true} {
		res := execute(t, map[string]any{"code": code, "allowOutbound": allow})
		wantSuccess(t, res)
		if res.Response.Body != "blocked" || !strings.Contains(res.Stderr, "fetch failed") {
			t.Errorf("allowOutbound %v: body = %q, stderr = %q, want loopback blocked", allow, res.Response.Body, res.Stderr)
		}
	}
	if len(hits) != 0 {
		t.Errorf("guest code reached a loopback server %d times", len(hits))
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"code":      `export default { async fetch() { console.log("waiting"); await new Promise((r) => setTimeout(r, 60000)); } }`,
		"timeoutMs": 500,
	})
	wantError(t, res, execution.CodeTimeout, "timeout")
	// Not before its timeout, by the gateway's own measure (how much later
	// depends on the machine's load: not a unit test's matter).
	if res.DurationMs < 500 {
		t.Errorf("timed out after %v ms, before its timeout of 500 ms", res.DurationMs)
	}
	if res.Stdout != "waiting" {
		t.Errorf("stdout = %q, want the logs made before the timeout", res.Stdout)
	}
}
