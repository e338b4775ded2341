package mcp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/mcp"
)

// TestAttackSessionFlood: an MCP session costs the gateway memory and a
// goroutine until it has been idle for the session timeout (30 minutes),
// and initialize counts against no quota. A key must not be able to open
// sessions without end: past mcp.DefaultMaxSessions open ones, opening
// another is a 429 problem, however it is spelled or however many arrive
// at once; other keys are not affected, and closing a session makes room.
func TestAttackSessionFlood(t *testing.T) {
	t.Parallel()
	var sent map[string]string
	base := gateway(t, func(o *apitest.Gateway) {
		sent = keys(t, o, map[string]auth.Key{"ci": {}, "other": {}, "burst": {}})
	})
	open := func(key, msg string) rpc {
		return post(t, base, map[string]string{"Authorization": "Bearer " + sent[key]}, msg)
	}
	var ids []string
	for range mcp.DefaultMaxSessions {
		r := open("ci", initialize)
		if r.status != http.StatusOK || r.header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("initialize within the bound = %d %s", r.status, r.body)
		}
		ids = append(ids, r.header.Get("Mcp-Session-Id"))
	}
	spellings := map[string]string{
		"the same initialize": initialize,
		"another client":      strings.Replace(initialize, `"curl"`, `"other-client"`, 1),
		"an older protocol":   strings.Replace(initialize, protocolVersion, "2025-03-26", 1),
		"a batch":             "[" + initialize + "]",
	}
	for name, msg := range spellings {
		if r := open("ci", msg); r.status != http.StatusTooManyRequests || r.message["code"] != "rate_limited" || r.header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s past the bound = %d %s, want the 429 rate_limited problem and no session", name, r.status, r.body)
		}
	}
	if r := open("other", initialize); r.status != http.StatusOK {
		t.Errorf("another key's initialize = %d %s, want 200", r.status, r.body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+sent["ci"])
	req.Header.Set("Mcp-Session-Id", ids[0])
	req.Header.Set("MCP-Protocol-Version", protocolVersion)
	if r := do(t, req); r.status != http.StatusNoContent && r.status != http.StatusOK {
		t.Fatalf("DELETE a session = %d %s", r.status, r.body)
	}
	if r := open("ci", initialize); r.status != http.StatusOK {
		t.Errorf("initialize after closing a session = %d %s, want 200", r.status, r.body)
	}

	// All at once: no more than the bound get through.
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened := 0
	for range 2 * mcp.DefaultMaxSessions {
		wg.Go(func() {
			if r := open("burst", initialize); r.status == http.StatusOK {
				mu.Lock()
				opened++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if opened > mcp.DefaultMaxSessions || opened == 0 {
		t.Errorf("a burst opened %d sessions, want 1 to %d", opened, mcp.DefaultMaxSessions)
	}
}

// TestAttackBatchExecutionsAreApart: protocol 2025-03-26 lets one HTTP
// request carry a JSON-RPC batch, so several execute calls run at once
// within one HTTP request. Each is an execution of its own: its own id,
// and only its own outbound requests in its result, whatever the batch
// holds (so one call cannot hide its requests from its own audit in
// another's). Batches of two and three calls, and one with a tools/list.
func TestAttackBatchExecutionsAreApart(t *testing.T) {
	t.Parallel()
	base := gateway(t, nil)
	const old = "2025-03-26"
	init := post(t, base, nil, strings.Replace(initialize, protocolVersion, old, 1))
	h := map[string]string{"Mcp-Session-Id": init.header.Get("Mcp-Session-Id"), "MCP-Protocol-Version": old}
	post(t, base, h, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	call := func(n int) string {
		code := fmt.Sprintf(`export default { async fetch() {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(100);
  try { await fetch("https://host-%d.example/"); } catch {}
  await sleep(300);
  return new Response("%d");
} }`, n, n)
		args, _ := json.Marshal(map[string]any{"code": code, "allowOutbound": []string{"allowed.example"}})
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"execute","arguments":%s}}`, n, args)
	}
	list := `{"jsonrpc":"2.0","id":99,"method":"tools/list"}`
	for name, batch := range map[string][]string{
		"two calls":         {call(1), call(2)},
		"three calls":       {call(1), call(2), call(3)},
		"a call and a list": {call(1), list, call(2)},
	} {
		t.Run(name, func(t *testing.T) {
			r := post(t, base, h, "["+strings.Join(batch, ",")+"]")
			ids := map[string]bool{}
			for _, ev := range r.events {
				res, _ := ev["result"].(map[string]any)
				sc, _ := res["structuredContent"].(map[string]any)
				if sc == nil {
					continue
				}
				id, body := fmt.Sprint(sc["id"]), fmt.Sprint(sc["response"].(map[string]any)["body"])
				if ids[id] {
					t.Errorf("execution id %s given to two calls", id)
				}
				ids[id] = true
				out, _ := json.Marshal(sc["outbound"])
				want, _ := json.Marshal([]map[string]any{{"method": "GET", "url": "https://host-" + body + ".example/", "denied": true}})
				if string(out) != string(want) {
					t.Errorf("call %s: outbound = %s, want only its own request %s", body, out, want)
				}
			}
			if len(ids) != strings.Count(strings.Join(batch, ""), "tools/call") {
				t.Errorf("%d executions answered, want one per call: %s", len(ids), r.body)
			}
		})
	}
}

// TestAttackSessionOfAnotherKey: another key can do nothing with a session
// it did not open, by any method: not call a tool in it, not read its
// stream, not close it; the session then still serves its own key.
func TestAttackSessionOfAnotherKey(t *testing.T) {
	t.Parallel()
	var sent map[string]string
	base := gateway(t, func(o *apitest.Gateway) {
		sent = keys(t, o, map[string]auth.Key{"ci": {}, "other": {}})
	})
	init := post(t, base, map[string]string{"Authorization": "Bearer " + sent["ci"]}, initialize)
	session := init.header.Get("Mcp-Session-Id")
	if init.status != http.StatusOK || session == "" {
		t.Fatalf("initialize = %d %s", init.status, init.body)
	}
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"execute","arguments":{"code":"export default { fetch() { return new Response('x') } }"}}}`
	for _, tt := range []struct{ method, body, accept string }{
		{http.MethodPost, call, "application/json, text/event-stream"},
		{http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`, "application/json, text/event-stream"},
		{http.MethodGet, "", "text/event-stream"},
		{http.MethodDelete, "", "*/*"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+"/mcp", strings.NewReader(tt.body))
		req.Header.Set("Authorization", "Bearer "+sent["other"])
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("MCP-Protocol-Version", protocolVersion)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", tt.accept)
		if r := do(t, req); r.status != http.StatusForbidden {
			t.Errorf("other key: %s in ci's session = %d %s, want 403", tt.method, r.status, r.body)
		}
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	r := post(t, base, map[string]string{"Authorization": "Bearer " + sent["ci"], "Mcp-Session-Id": session, "MCP-Protocol-Version": protocolVersion}, list)
	if r.status != http.StatusOK {
		t.Errorf("ci's own session after the tries = %d %s, want 200", r.status, r.body)
	}
}
