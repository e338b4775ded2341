package mcp_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api"
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
	base := gateway(t, func(o *api.Options) {
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
