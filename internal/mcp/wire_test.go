package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
)

const protocolVersion = "2025-06-18"

// TestWire speaks raw JSON-RPC over HTTP to /mcp, so the wire format is
// checked and not only the SDK's view of it: initialize and its session id,
// tools/list, a tools/call whose console lines come as progress events on
// the call's own stream before its result, and a session's end.
func TestWire(t *testing.T) {
	t.Parallel()
	base := gateway(t, nil)

	init := post(t, base, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+protocolVersion+`","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`)
	session := init.header.Get("Mcp-Session-Id")
	if init.status != 200 || !strings.HasPrefix(init.header.Get("Content-Type"), "text/event-stream") || session == "" {
		t.Fatalf("initialize = %d %q session %q: %s", init.status, init.header.Get("Content-Type"), session, init.body)
	}
	result := object(t, init.message, "result")
	if init.message["jsonrpc"] != "2.0" || init.message["id"] != float64(1) || result["protocolVersion"] != protocolVersion {
		t.Errorf("initialize answer = %v, want JSON-RPC 2.0, id 1, version %s", init.message, protocolVersion)
	}
	if caps := object(t, result, "capabilities"); caps["tools"] == nil || caps["resources"] == nil {
		t.Errorf("capabilities = %v, want tools and resources", caps)
	}
	if info := object(t, result, "serverInfo"); info["name"] != "dynamic-workers-gateway" {
		t.Errorf("serverInfo = %v", info)
	}
	if init.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id: /mcp is not behind the gateway's middleware")
	}
	if id := init.header.Get("X-Execution-Id"); id != "" {
		t.Errorf("X-Execution-Id = %q on initialize, which runs nothing", id)
	}

	in := map[string]string{"Mcp-Session-Id": session, "MCP-Protocol-Version": protocolVersion}
	if r := post(t, base, in, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Fatalf("notifications/initialized = %d %s, want 202 and no body", r.status, r.body)
	}

	list := post(t, base, in, `{"jsonrpc":"2.0","id":"list","method":"tools/list"}`)
	tools, _ := object(t, list.message, "result")["tools"].([]any)
	if list.status != 200 || list.message["id"] != "list" || len(tools) != 1 {
		t.Fatalf("tools/list = %d %s", list.status, list.body)
	}
	tool := tools[0].(map[string]any)
	if tool["name"] != "execute" || object(t, tool, "inputSchema")["type"] != "object" {
		t.Errorf("tool = %v, want execute with an object schema", tool)
	}

	callTool := post(t, base, in, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"execute","_meta":{"progressToken":"p"},"arguments":{"code":`+quote(streamedGuest)+`}}}`)
	if callTool.status != 200 || !strings.HasPrefix(callTool.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("tools/call = %d %q", callTool.status, callTool.header.Get("Content-Type"))
	}
	// Progress notifications carrying the five lines in order (lines that
	// arrive together share one), then the result, last.
	events := callTool.events
	if len(events) < 2 || len(events) > 6 {
		t.Fatalf("tools/call stream has %d messages, want progress and the result: %s", len(events), callTool.body)
	}
	var lines []string
	for i, ev := range events[:len(events)-1] {
		params := object(t, ev, "params")
		msg, _ := params["message"].(string)
		lines = append(lines, strings.Split(msg, "\n")...)
		if ev["method"] != "notifications/progress" || params["progressToken"] != "p" || params["progress"] != float64(len(lines)) {
			t.Errorf("message %d = %v, want progress %d of the call", i, ev, len(lines))
		}
	}
	if want := "[stdout] line 1\n[stdout] line 2\n[stdout] line 3\n[stdout] line 4\n[stdout] line 5"; strings.Join(lines, "\n") != want {
		t.Errorf("progress lines %q, want %q", lines, want)
	}
	last := events[len(events)-1]
	res := object(t, last, "result")
	sc := object(t, res, "structuredContent")
	content, _ := res["content"].([]any)
	if last["id"] != float64(7) || sc["success"] != true || len(content) != 1 || res["isError"] == true {
		t.Fatalf("last message = %v, want the result of call 7", last)
	}
	if c := content[0].(map[string]any); c["type"] != "text" || !strings.Contains(c["text"].(string), "line 5") {
		t.Errorf("content = %v, want a text with the output", c)
	}
	if sc["lines"] != float64(5) || sc["stdout"] != "line 1\nline 2\nline 3\nline 4\nline 5" {
		t.Errorf("structuredContent = %v, want five lines", sc)
	}

	bad := post(t, base, map[string]string{"Mcp-Session-Id": "no-such-session", "MCP-Protocol-Version": protocolVersion}, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if bad.status != http.StatusNotFound {
		t.Errorf("unknown session = %d, want 404", bad.status)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, base+"/mcp", nil)
	req.Header.Set("Mcp-Session-Id", session)
	if r := do(t, req); r.status != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", r.status)
	}
	if r := post(t, base, in, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`); r.status != http.StatusNotFound {
		t.Errorf("ended session = %d, want 404", r.status)
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPut, base+"/mcp", nil)
	if r := do(t, req); r.status != http.StatusMethodNotAllowed || r.message["code"] != "method_not_allowed" {
		t.Errorf("PUT /mcp = %d %s, want the 405 problem", r.status, r.body)
	}
}

// object returns m[key] as an object, failing the test if it is not one.
func object(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%s = %v in %v, want an object", key, m[key], m)
	}
	return o
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestHostCheck: without keys, a request that reached the loopback address
// must name a loopback Host (a DNS-rebound page's requests do not); with
// keys any Host is served, as a reverse proxy on the same host forwards it.
func TestHostCheck(t *testing.T) {
	t.Parallel()
	open := gateway(t, nil)
	var sent map[string]string
	keyed := gateway(t, func(o *apitest.Gateway) { sent = keys(t, o, map[string]auth.Key{"ci": {}}) })
	tests := []struct {
		name, base, host, key string
		status                int
	}{
		{"no keys, loopback host", open, "localhost:8080", "", 200},
		{"no keys, 127.0.0.1", open, "127.0.0.1:8080", "", 200},
		{"no keys, a name", open, "rebound.example.com", "", 403},
		{"no keys, a name and port", open, "rebound.example.com:8080", "", 403},
		{"no keys, a public address", open, "203.0.113.9", "", 403},
		{"keys, a name", keyed, "gateway.example.com", "ci", 200},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.base+"/mcp", strings.NewReader(initialize))
		req.Host = tt.host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+sent[tt.key])
		}
		if r := do(t, req); r.status != tt.status {
			t.Errorf("%s: initialize with Host %q = %d, want %d", tt.name, tt.host, r.status, tt.status)
		}
	}
}
