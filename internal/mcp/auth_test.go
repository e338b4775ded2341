package mcp_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + protocolVersion + `","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`

// TestAuthentication: with keys configured, every /mcp method without a
// valid key is refused with 401, a Bearer challenge and the unauthorized
// problem, before the MCP server sees it; a session answers only the key
// that opened it.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	var sent map[string]string
	base := gateway(t, func(o *apitest.Gateway) {
		sent = keys(t, o, map[string]auth.Key{"ci": {}, "other": {}, "retired": {Revoked: true}})
	})
	headers := []struct{ name, value string }{
		{"missing", ""},
		{"basic scheme", "Basic " + sent["ci"]},
		{"no token", "Bearer"},
		{"wrong key", "Bearer dwk_notakeyatall"},
		{"key with extra", "Bearer " + sent["ci"] + "x"},
		{"revoked", "Bearer " + sent["retired"]},
		{"the hash", "Bearer " + auth.HashKey(sent["ci"])},
	}
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		for _, h := range headers {
			req, _ := http.NewRequestWithContext(t.Context(), method, base+"/mcp", strings.NewReader(initialize))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", "s")
			if h.value != "" {
				req.Header.Set("Authorization", h.value)
			}
			r := do(t, req)
			challenge := r.header.Get("WWW-Authenticate")
			if r.status != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `error_description="a valid API key is required`) ||
				!strings.Contains(challenge, "not OAuth") || r.message["code"] != "unauthorized" || !strings.Contains(fmt.Sprint(r.message["detail"]), "API key") {
				t.Errorf("%s /mcp, %s: %d %q %s, want the 401 problem with a Bearer challenge", method, h.name, r.status, r.header.Get("WWW-Authenticate"), r.body)
			}
		}
	}

	if _, err := dial(t, base, "", nil); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("SDK client without a key: Connect = %v, want Unauthorized", err)
	}
	s := connect(t, base, sent["ci"], nil)
	if res := call(t, s, map[string]any{"code": seedCode}); res.IsError {
		t.Errorf("execute with a valid key = %s", text(t, res))
	}

	// A session opened with one key does not answer another.
	init := post(t, base, map[string]string{"Authorization": "Bearer " + sent["ci"]}, initialize)
	session := init.header.Get("Mcp-Session-Id")
	if init.status != 200 || session == "" {
		t.Fatalf("initialize = %d %s", init.status, init.body)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	for key, want := range map[string]int{"ci": http.StatusOK, "other": http.StatusForbidden} {
		r := post(t, base, map[string]string{"Authorization": "Bearer " + sent[key], "Mcp-Session-Id": session, "MCP-Protocol-Version": protocolVersion}, list)
		if r.status != want {
			t.Errorf("tools/list in ci's session with %s's key = %d, want %d", key, r.status, want)
		}
	}
}

// TestQuota: the MCP execute tool and POST /execute share a key's quotas.
// Only executions count (initialize, tools/list and the session's stream do
// not); past the quota a call is a tool error carrying the 429 problem.
func TestQuota(t *testing.T) {
	t.Parallel()
	var sent map[string]string
	base := gateway(t, func(o *apitest.Gateway) {
		sent = keys(t, o, map[string]auth.Key{"batch": {Requests: 2}, "single": {Concurrency: 1}})
	})

	t.Run("requests", func(t *testing.T) {
		t.Parallel()
		s := connect(t, base, sent["batch"], nil)
		for range 3 {
			if _, err := s.ListTools(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
		}
		if res := call(t, s, map[string]any{"code": seedCode}); res.IsError {
			t.Fatalf("first execution = %s", text(t, res))
		}
		if status, _ := postExecute(t, base, sent["batch"], map[string]any{"code": seedCode}); status != 200 {
			t.Fatalf("second execution, by POST /execute = %d", status)
		}
		res := call(t, s, map[string]any{"code": seedCode})
		refusedWith(t, res, "rate_limited", "Retry after")
		if status, p := postExecute(t, base, sent["batch"], map[string]any{"code": seedCode}); status != 429 || p["code"] != "rate_limited" {
			t.Errorf("POST /execute past the quota = %d %v, want 429 rate_limited", status, p)
		}
		if _, err := s.ListTools(t.Context(), nil); err != nil {
			t.Errorf("tools/list past the execution quota = %v, want it served", err)
		}
	})

	t.Run("concurrency", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{}, 8)
		s := connect(t, base, sent["single"], &sdk.ClientOptions{ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) {
			started <- struct{}{}
		}})
		// The session's standalone stream (the SDK client opens one) holds
		// no execution slot: the first execution runs.
		params := &sdk.CallToolParams{Name: "execute", Arguments: map[string]any{"code": `export default { async fetch() {
  console.log("started");
  await new Promise((r) => setTimeout(r, 1500));
  return new Response("done");
} }`}}
		params.SetProgressToken(1)
		first := make(chan *sdk.CallToolResult, 1)
		go func() {
			res, err := s.CallTool(t.Context(), params)
			if err != nil {
				t.Error(err)
			}
			first <- res
		}()
		select {
		case <-started: // the first guest runs
		case <-within(t, 10*time.Second).Done():
			t.Fatal("the first execution sent no line")
		}
		refusedWith(t, call(t, s, map[string]any{"code": seedCode}), "concurrency_limited", "Retry after 1 s")
		if status, p := postExecute(t, base, sent["single"], map[string]any{"code": seedCode}); status != 429 || p["code"] != "concurrency_limited" {
			t.Errorf("POST /execute while the MCP execution runs = %d %v, want 429 concurrency_limited", status, p)
		}
		if res := <-first; res == nil || res.IsError {
			t.Fatalf("first execution = %+v", res)
		}
		if res := call(t, s, map[string]any{"code": seedCode}); res.IsError {
			t.Errorf("execution after the first ended = %s, want it run", text(t, res))
		}
	})
}

// refusedWith checks a tool result is the refusal with the given problem code.
func refusedWith(t *testing.T, res *sdk.CallToolResult, code, hint string) {
	t.Helper()
	p, _ := structured(t, res)["problem"].(map[string]any)
	if !res.IsError || p["status"] != float64(429) || p["code"] != code {
		t.Fatalf("result = %v (isError %v), want the 429 %s problem", p, res.IsError, code)
	}
	if txt := text(t, res); !strings.HasPrefix(txt, "refused (429 "+code+")") || !strings.Contains(txt, hint) {
		t.Errorf("text = %q, want the refusal and %q", txt, hint)
	}
}
