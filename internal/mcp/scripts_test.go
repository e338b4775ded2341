package mcp_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/store"
)

// TestStoredScriptTools: where the gateway keeps records, an agent lists
// the key's stored scripts and runs one by name, with its env merged over
// the script's; a name that does not exist is a tool error naming it.
func TestStoredScriptTools(t *testing.T) {
	t.Parallel()
	base := gateway(t, func(o *apitest.Gateway) {
		st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o.Store = st
	})
	put(t, base, "/scripts/greeter", map[string]any{
		"code": "console.log('greeting', env.WHO);\nreturn `hello ${env.WHO} from ${env.FROM}`;",
		"env":  map[string]any{"WHO": "nobody", "FROM": "the script"},
	})
	s := connect(t, base, "", nil)
	tools, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "run_script") || !slices.Contains(names, "list_scripts") {
		t.Fatalf("tools = %v, want run_script and list_scripts where scripts are kept", names)
	}
	list, err := s.CallTool(t.Context(), &sdk.CallToolParams{Name: "list_scripts"})
	if err != nil || list.IsError || !strings.Contains(text(t, list), "- greeter@") || !strings.Contains(text(t, list), "env FROM, WHO") {
		t.Errorf("list_scripts = %v %v, want the greeter with its env's names", list, err)
	}
	res, err := s.CallTool(t.Context(), &sdk.CallToolParams{Name: "run_script", Arguments: map[string]any{"script": "greeter", "env": map[string]any{"WHO": "agent"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := structured(t, res); res.IsError || got["returnValue"] != "hello agent from the script" || got["stdout"] != "greeting agent" {
		t.Errorf("run_script = %v, want the script run with the call's env over its own", got)
	}
	missing, err := s.CallTool(t.Context(), &sdk.CallToolParams{Name: "run_script", Arguments: map[string]any{"script": "nope"}})
	if err != nil || !missing.IsError || !strings.Contains(text(t, missing), "404") {
		t.Errorf("run_script of a missing script = %v %v, want a tool error", missing, err)
	}
}

// put stores body at path (PUT) and fails the test unless it is stored.
func put(t *testing.T, base, path string, body any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, base+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if r := do(t, req); r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("PUT %s = %d %s", path, r.status, r.body)
	}
}
