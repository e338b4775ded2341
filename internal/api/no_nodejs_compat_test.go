package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// withoutNode are the compatibility flags that turn Node compatibility off
// at a date where it is on by default: an isolate then starts in about
// 60% of the CPU (docs/performance.md), and node:* modules and the Node
// globals are gone.
var withoutNode = []string{"no_nodejs_compat", "no_nodejs_compat_v2"}

// nodelessCode logs a string, an object and an error, and answers with
// what it sees of the Node globals and how many times its isolate ran it;
// asked with "late", it leaves a timer behind that logs after it ended.
const nodelessCode = `
let runs = 0;
export default {
  async fetch(request) {
    runs++;
    const ask = await request.text();
    if (ask === "late") setTimeout(() => console.log("late line"), 20);
    if (ask === "wait") await new Promise((r) => setTimeout(r, 150));
    console.log("hello", { a: 1 });
    console.error(new Error("boom"));
    return Response.json({ runs, buffer: typeof Buffer, process: typeof process });
  },
};`

func nodelessBody(suite, isolate, ask string) map[string]any {
	return map[string]any{
		"code": nodelessCode, "compatibilityDate": "2026-11-17", "compatibilityFlags": withoutNode,
		"env": map[string]any{"SUITE": suite}, "isolate": isolate,
		"request": map[string]any{"method": "POST", "body": ask},
	}
}

// TestWithoutNodeCompat runs a guest with Node compatibility off through the
// HTTP API, fresh and in a reused isolate (where the shim adds nodejs_als
// for the capture wrapper): it runs, its output is captured, the Node
// globals are absent, and a reused isolate stays warm.
func TestWithoutNodeCompat(t *testing.T) {
	t.Parallel()
	for _, isolate := range []string{"fresh", "reuse"} {
		t.Run(isolate, func(t *testing.T) {
			t.Parallel()
			suite := newSuite()
			for i := range 2 {
				res := execute(t, nodelessBody(suite, isolate, ""))
				wantSuccess(t, res)
				if res.Stdout != "hello { a: 1 }" {
					t.Errorf("stdout = %q, want %q", res.Stdout, "hello { a: 1 }")
				}
				if !strings.HasPrefix(res.Stderr, "Error: boom") {
					t.Errorf("stderr = %q, want the error with its stack", res.Stderr)
				}
				var seen struct {
					Runs            int
					Buffer, Process string
				}
				if err := json.Unmarshal([]byte(res.Response.Body), &seen); err != nil {
					t.Fatalf("body %q: %v", res.Response.Body, err)
				}
				if seen.Buffer != "undefined" || seen.Process != "undefined" {
					t.Errorf("typeof Buffer, process = %s, %s; want undefined, undefined", seen.Buffer, seen.Process)
				}
				warm := isolate == "reuse" && i == 1
				if res.Warm != warm || (seen.Runs == 2) != warm {
					t.Errorf("execution %d: warm %v, runs %d; want warm %v", i, res.Warm, seen.Runs, warm)
				}
			}
		})
	}
}

// TestWithoutNodeCompatKeepsTimersOut: in a reused isolate without Node
// compatibility, a line a timer of an earlier execution logs is not the
// current execution's (the wrapper's AsyncLocalStorage still works).
func TestWithoutNodeCompatKeepsTimersOut(t *testing.T) {
	t.Parallel()
	suite := newSuite()
	wantSuccess(t, execute(t, nodelessBody(suite, "reuse", "late")))
	res := execute(t, nodelessBody(suite, "reuse", "wait"))
	wantSuccess(t, res)
	if !res.Warm || strings.Contains(res.Stdout, "late line") {
		t.Errorf("second execution: warm %v, stdout %q; want a warm isolate and none of the first one's lines", res.Warm, res.Stdout)
	}
}

// TestWithoutNodeCompatNodeModulesFail: without Node compatibility a node:*
// import fails, however it is spelled, fresh or reused, as the execution's
// error (never a gateway failure).
func TestWithoutNodeCompatNodeModulesFail(t *testing.T) {
	t.Parallel()
	for name, code := range map[string]string{
		"static import":  `import { Buffer } from "node:buffer"; export default { fetch() { return new Response(String(Buffer)); } }`,
		"bare import":    `import "node:fs"; export default { fetch() { return new Response("ok"); } }`,
		"dynamic import": `export default { async fetch() { const p = await import("node:path"); return new Response(String(p)); } }`,
		"named import":   `import { createHash } from "node:crypto"; export default { fetch() { return new Response(String(createHash)); } }`,
	} {
		for _, isolate := range []string{"fresh", "reuse"} {
			t.Run(fmt.Sprintf("%s %s", name, isolate), func(t *testing.T) {
				t.Parallel()
				body := map[string]any{"code": code, "compatibilityDate": "2026-11-17", "compatibilityFlags": withoutNode, "isolate": isolate}
				resp, data := post(t, "/execute", "application/json", body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("POST /execute = %d %s, want 200 with the execution's error", resp.StatusCode, data)
				}
				var res execution.Result
				if err := json.Unmarshal(data, &res); err != nil {
					t.Fatal(err)
				}
				if res.Success || res.Error == nil {
					t.Fatalf("success = %v, error = %+v; want the import to fail", res.Success, res.Error)
				}
				if !strings.Contains(res.Error.Message, "node:") {
					t.Errorf("error %s: %q, want it to name the node: module", res.Error.Code, res.Error.Message)
				}
			})
		}
	}
}
