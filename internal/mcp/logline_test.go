package mcp_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// TestLogLines: each /mcp access line says which MCP methods its request
// carried and, for a tools/call, which tool; the audit line of a call's
// execution carries the request's id and the execution's own, one each.
func TestLogLines(t *testing.T) {
	t.Parallel()
	logs := &loadertest.Buffer{}
	base := loggedGateway(t, nil, logs)
	s := connect(t, base, "", nil)
	if res := call(t, s, map[string]any{"code": seedCode}); res.IsError {
		t.Fatalf("execute: %s", text(t, res))
	}
	s.Close()
	var methods []string
	var calls, audits []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		switch {
		case entry["message"] == "request" && entry["route"] == "/mcp" && entry["mcp_method"] != nil:
			methods = append(methods, entry["mcp_method"].(string))
			if entry["mcp_method"] == "tools/call" {
				calls = append(calls, entry)
			}
		case entry["message"] == "execution finished":
			audits = append(audits, entry)
		}
	}
	if !strings.Contains(strings.Join(methods, " "), "initialize") || len(calls) != 1 || calls[0]["mcp_tool"] != "execute" {
		t.Fatalf("/mcp access lines say methods %v, tools/call lines %v; want initialize and one tools/call of execute:\n%s", methods, calls, logs.String())
	}
	if len(audits) != 1 {
		t.Fatalf("audit lines %v, want one", audits)
	}
	a := audits[0]
	if id, _ := a["execution_id"].(string); !strings.HasPrefix(id, "ex_") || a["request_id"] != calls[0]["request_id"] || a["id"] != nil {
		t.Errorf("audit line %v: want its execution's id (ex_…) and the request id of the tools/call line %v, no other id", a, calls[0]["request_id"])
	}
}
