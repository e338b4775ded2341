package mcp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestListCapabilities lists, per key, the capabilities it may use (as GET
// /capabilities does: never a header or a host), and the execute tool
// refuses a capability the key may not use, naming the field.
func TestListCapabilities(t *testing.T) {
	t.Parallel()
	const token = "cap-token-never-listed"
	var sent map[string]string
	base := gateway(t, func(o *apitest.Gateway) {
		sent = keys(t, o, map[string]auth.Key{"ci": {}, "agents": {}})
		o.Capabilities = executions.Capabilities{
			"inventory": {URL: "http://10.0.3.7:9000/api/", Headers: map[string]string{"authorization": "Bearer " + token},
				Methods: []string{"GET", "POST"}, TimeoutMs: 5000, MaxCalls: 50, Secrets: []string{token}},
			"billing": {URL: "http://10.0.3.8/v1/", Methods: []string{"GET"}, TimeoutMs: 2000, MaxCalls: 5, Keys: []string{"ci"}},
		}
	})
	for key, want := range map[string][]string{"ci": {"billing", "inventory"}, "agents": {"inventory"}} {
		s := connect(t, base, sent[key], nil)
		tools, err := s.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(tools.Tools, func(tool *sdk.Tool) bool { return tool.Name == "list_capabilities" }) {
			t.Fatalf("%s: tools/list has no list_capabilities", key)
		}
		res, err := s.CallTool(t.Context(), &sdk.CallToolParams{Name: "list_capabilities", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("%s: list_capabilities = %+v, %v", key, res, err)
		}
		data, _ := json.Marshal(res.StructuredContent)
		var list execution.CapabilityList
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range list.Capabilities {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: list_capabilities names %v, want %v", key, names, want)
		}
		txt := text(t, res)
		for _, leak := range []string{token, "10.0.3.7", "10.0.3.8", "authorization"} {
			if strings.Contains(string(data)+txt, leak) {
				t.Errorf("%s: the list shows %q: %s %s", key, leak, data, txt)
			}
		}
		if !strings.Contains(txt, "inventory: GET, POST under /api/, at most 50 calls") {
			t.Errorf("%s: text %q", key, txt)
		}
	}

	s := connect(t, base, sent["agents"], nil)
	res := call(t, s, map[string]any{"code": `export default { fetch() { return new Response("x") } }`, "capabilities": []string{"billing"}})
	if !res.IsError || !strings.Contains(text(t, res), "capabilities[0]") {
		t.Errorf("execute with another key's capability: isError %v, text %q; want a refusal naming capabilities[0]", res.IsError, text(t, res))
	}
}
