//lint:file-ignore SA1019 tests the log-message path the server keeps for clients without a progress token (MCP logging is deprecated, still functional).

package mcp_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// seedCode is the guest of the seed's "Execute Code" example.
const seedCode = `
  export default {
    async fetch(request, env, ctx) {
      console.log("Isolated worker running!");
      return new Response("Done");
    }
  }
`

// TestClientSession drives /mcp with the SDK's own client: initialize,
// list the tools and the guide, and call execute on the seed example, a
// throwing guest, a TypeScript module, secrets and an invalid request.
func TestClientSession(t *testing.T) {
	t.Parallel()
	base := gateway(t, nil)
	s := connect(t, base, "", nil)

	init := s.InitializeResult()
	if init.ServerInfo.Name != "dynamic-workers-gateway" || init.Capabilities.Tools == nil || init.Capabilities.Resources == nil {
		t.Errorf("initialize = %+v, want the gateway with tools and resources", init)
	}
	if !strings.Contains(init.Instructions, "execute") {
		t.Errorf("instructions = %q, want them to name the execute tool", init.Instructions)
	}

	t.Run("tools", func(t *testing.T) {
		tools, err := s.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(tools.Tools) != 1 || tools.Tools[0].Name != "execute" {
			t.Fatalf("tools = %+v, want execute", tools.Tools)
		}
		tool := tools.Tools[0]
		for _, want := range []string{"export default { fetch(request, env, ctx) }", "return items[0];", "no file system", "at most 30000"} {
			if !strings.Contains(tool.Description, want) {
				t.Errorf("description %q lacks %q", tool.Description, want)
			}
		}
		schema, _ := tool.InputSchema.(map[string]any)
		props, _ := schema["properties"].(map[string]any)
		for _, field := range []string{"code", "modules", "language", "env", "secrets", "allowOutbound", "timeoutMs", "isolate", "retry"} {
			if props[field] == nil {
				t.Errorf("input schema has no %s: %v", field, schema)
			}
		}
		if out, _ := tool.OutputSchema.(map[string]any); out == nil || out["properties"].(map[string]any)["returnValue"] == nil {
			t.Errorf("output schema = %v, want the result's members", tool.OutputSchema)
		}
	})

	t.Run("guide", func(t *testing.T) {
		list, err := s.ListResources(t.Context(), nil)
		if err != nil || len(list.Resources) != 1 {
			t.Fatalf("ListResources = %+v, %v; want the guide", list, err)
		}
		got, err := s.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: list.Resources[0].URI})
		if err != nil {
			t.Fatal(err)
		}
		if c := got.Contents[0]; c.MIMEType != "text/markdown" || !strings.Contains(c.Text, "export default {") {
			t.Errorf("guide = %+v, want markdown with an example", c)
		}
	})

	t.Run("seed example", func(t *testing.T) {
		res := call(t, s, map[string]any{"code": seedCode})
		got := structured(t, res)
		if res.IsError || got["success"] != true || got["stdout"] != "Isolated worker running!" {
			t.Fatalf("result = %v (isError %v), want success printing the seed's line", got, res.IsError)
		}
		if txt := text(t, res); !strings.HasPrefix(txt, "success (") || !strings.Contains(txt, "stdout:\nIsolated worker running!") ||
			!strings.Contains(txt, "response: 200") || !strings.Contains(txt, "body:\nDone") {
			t.Errorf("text = %q, want success, stdout and the body", txt)
		}
		// The structured content is POST /execute's result for the same
		// request, bounded: the same members where both have them.
		status, want := postExecute(t, base, "", map[string]any{"code": seedCode})
		if status != 200 {
			t.Fatalf("POST /execute = %d", status)
		}
		for _, k := range []string{"success", "mode", "stdout"} {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("structuredContent.%s = %v, POST /execute's %v", k, got[k], want[k])
			}
		}
		gr, wr := got["response"].(map[string]any), want["response"].(map[string]any)
		for _, k := range []string{"status", "headers", "body", "bodyEncoding"} {
			if !reflect.DeepEqual(gr[k], wr[k]) {
				t.Errorf("structuredContent.response.%s = %v, POST /execute's %v", k, gr[k], wr[k])
			}
		}
		if got["lines"] != float64(1) || got["stdoutBytes"] != float64(len("Isolated worker running!")) || got["logs"] != nil {
			t.Errorf("structuredContent = %v, want the line counted, not repeated in logs", got)
		}
	})

	t.Run("plain script", func(t *testing.T) {
		res := call(t, s, map[string]any{"code": "console.log(await Promise.resolve('hi'));\nreturn { answer: 6 * 7 };"})
		got := structured(t, res)
		if res.IsError || got["mode"] != "script" || got["stdout"] != "hi" || !reflect.DeepEqual(got["returnValue"], map[string]any{"answer": float64(42)}) {
			t.Fatalf("result = %v, want the script's line and return value", got)
		}
		if txt := text(t, res); !strings.Contains(txt, "returned:\n{\"answer\":42}") {
			t.Errorf("text = %q, want the return value", txt)
		}
	})

	t.Run("throwing guest", func(t *testing.T) {
		res := call(t, s, map[string]any{"code": `export default { async fetch() {
  console.error("about to fail");
  throw new Error("boom");
} }`})
		got := structured(t, res)
		e, _ := got["error"].(map[string]any)
		if !res.IsError || got["success"] != false || e["code"] != "exception" || e["message"] != "Error: boom" {
			t.Fatalf("result = %v (isError %v), want an exception", got, res.IsError)
		}
		txt := text(t, res)
		for _, want := range []string{"failed: exception (", "error:\nError: boom", "at ", "stderr:\nabout to fail"} {
			if !strings.Contains(txt, want) {
				t.Errorf("text = %q, want it to contain %q", txt, want)
			}
		}
	})

	t.Run("typescript module", func(t *testing.T) {
		res := call(t, s, map[string]any{
			"language": "typescript",
			"code":     "import { greet } from './greet.ts';\nexport default { async fetch(r: Request, env: { NAME: string }): Promise<Response> { console.log(greet(env.NAME)); return new Response('ok'); } };",
			"modules": map[string]string{
				"greet.ts": "export function greet(name: string): string { return `hello ${name}`; }",
			},
			"env": map[string]any{"NAME": "agent"},
		})
		if got := structured(t, res); res.IsError || got["stdout"] != "hello agent" {
			t.Errorf("result = %v, want the TypeScript guest's greeting", got)
		}
	})

	t.Run("a module named as code", func(t *testing.T) {
		res := call(t, s, map[string]any{"code": "return 1", "modules": map[string]string{"main.js": "export const x = 1;"}})
		p, _ := structured(t, res)["problem"].(map[string]any)
		errs, _ := p["errors"].([]any)
		if !res.IsError || len(errs) != 1 || errs[0].(map[string]any)["field"] != "modules.main.js" || errs[0].(map[string]any)["code"] != "conflict" {
			t.Errorf("result = %v, want modules.main.js in conflict with code", p)
		}
	})

	t.Run("secrets masked", func(t *testing.T) {
		res := call(t, s, map[string]any{
			"code":    `export default { fetch(r, env) { console.log("key=" + env.KEY); return new Response(env.KEY); } }`,
			"secrets": map[string]string{"KEY": "sk-very-secret-value"},
		})
		got := structured(t, res)
		if txt := text(t, res); strings.Contains(txt, "sk-very-secret-value") || got["stdout"] != "key=[REDACTED]" {
			t.Errorf("text %q / stdout %v, want the secret masked", txt, got["stdout"])
		}
	})

	t.Run("invalid request", func(t *testing.T) {
		res := call(t, s, map[string]any{"code": 42, "timeoutMs": -5, "colour": "red"})
		got, _ := structured(t, res)["problem"].(map[string]any)
		if !res.IsError || got["status"] != float64(422) || got["code"] != "invalid_request" {
			t.Fatalf("result = %v (isError %v), want the 422 problem", got, res.IsError)
		}
		txt := text(t, res)
		for _, want := range []string{"refused (422 invalid_request)", "- code (wrong_type)", "- timeoutMs (", "- colour (unknown_field)", "Fix these fields"} {
			if !strings.Contains(txt, want) {
				t.Errorf("text = %q, want it to contain %q", txt, want)
			}
		}
	})
}

// streamedGuest prints five lines with timers between them.
const streamedGuest = `export default { async fetch() {
  for (let i = 1; i <= 5; i++) {
    console.log("line " + i);
    await new Promise((r) => setTimeout(r, 150));
  }
  return new Response("done");
} }`

// streamedScript prints five lines with timers between them, as a plain
// script, and returns the time it wrote the last.
const streamedScript = `for (let i = 1; i <= 5; i++) {
  if (i > 1) await new Promise((r) => setTimeout(r, 150));
  console.log("line " + i);
}
return Date.now();`

// TestConsoleLinesStream: a guest's console lines reach the client while
// it runs, in order, as progress notifications when the call has a
// progress token, and as log messages when the client set a log level.
func TestConsoleLinesStream(t *testing.T) {
	t.Parallel()
	base := gateway(t, nil)
	want := []string{"[stdout] line 1", "[stdout] line 2", "[stdout] line 3", "[stdout] line 4", "[stdout] line 5"}

	t.Run("progress", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var got []string
		var received []time.Time
		s := connect(t, base, "", &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			// Lines that arrive together share a notification (the
			// server paces them); progress counts the lines so far.
			lines := strings.Split(req.Params.Message, "\n")
			if req.Params.ProgressToken != "run-1" || req.Params.Progress != float64(len(got)+len(lines)) {
				t.Errorf("progress %+v, want token run-1 and progress %d", req.Params, len(got)+len(lines))
			}
			got = append(got, lines...)
			received = append(received, time.Now())
		}})
		params := &sdk.CallToolParams{Name: "execute", Arguments: map[string]any{"code": streamedScript}}
		params.SetProgressToken("run-1")
		res, err := s.CallTool(t.Context(), params)
		if err != nil || res.IsError {
			t.Fatalf("CallTool = %+v, %v", res, err)
		}
		// The server sent every notification before the result (the raw
		// test checks the wire); the client may hand them on a little later.
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
		mu.Lock()
		defer mu.Unlock()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("notifications = %q, want %q", got, want)
		}
		// The first line arrived while the guest ran: before it wrote its
		// last line, by the guest's own clock (the value it returns).
		ms, _ := structured(t, res)["returnValue"].(float64)
		if last := time.UnixMilli(int64(ms)); !received[0].Before(last) {
			t.Errorf("first notification at %v, not before the guest's last line at %v", received[0], last)
		}
	})

	t.Run("log messages", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var got []string
		s := connect(t, base, "", &sdk.ClientOptions{LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
			mu.Lock()
			defer mu.Unlock()
			if req.Params.Logger != "guest" || req.Params.Level != "info" {
				t.Errorf("log message %+v, want guest's info", req.Params)
			}
			got = append(got, logLines(t, req.Params.Data)...)
		}})
		// No logging/setLevel: the session starts at mcp.DefaultLogLevel.
		if res := call(t, s, map[string]any{"code": streamedGuest}); res.IsError {
			t.Fatalf("result = %+v", res)
		}
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
		mu.Lock()
		defer mu.Unlock()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("log messages = %q, want %q", got, want)
		}
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	if !testwait.Until(5*time.Second, cond) {
		t.Fatal("condition not met within 5s")
	}
}

// TestCancelStopsExecution: a call the client cancels (it sends
// notifications/cancelled and drops the request) cancels its execution in
// the runtime, as hanging up on POST /execute does.
func TestCancelStopsExecution(t *testing.T) {
	t.Parallel()
	logs := &loadertest.Buffer{}
	base := loggedGateway(t, nil, logs)
	started := make(chan struct{}, 1)
	s := connect(t, base, "", &sdk.ClientOptions{ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) {
		started <- struct{}{}
	}})
	ctx, cancel := context.WithCancel(t.Context())
	params := &sdk.CallToolParams{Name: "execute", Arguments: map[string]any{"timeoutMs": 30000, "code": `export default { async fetch() {
  console.log("started");
  await new Promise((r) => setTimeout(r, 25000));
  return new Response("too late");
} }`}}
	params.SetProgressToken("c")
	done := make(chan error, 1)
	go func() {
		_, err := s.CallTool(ctx, params)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; err == nil {
		t.Fatal("CallTool after cancel = nil error, want the cancellation")
	}
	waitFor(t, func() bool {
		return strings.Contains(logs.String(), `"message":"client went away; execution cancelled"`)
	})
	if res := call(t, s, map[string]any{"code": seedCode}); res.IsError {
		t.Errorf("the session after a cancelled call: %s", text(t, res))
	}
}
