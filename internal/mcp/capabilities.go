package mcp

import (
	"context"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
)

// capabilitiesTool is the list_capabilities tool's definition.
func capabilitiesTool() *sdk.Tool {
	return &sdk.Tool{
		Name:  "list_capabilities",
		Title: "List the services guest code may call",
		Description: `List the operator's services (capabilities) that code run by the execute tool may call with this API key. ` +
			`Name one in execute's capabilities field and the guest gets env.<name> with fetch(input, init): ` +
			`await env.inventory.fetch("items/42") calls the service's base path + "items/42" with credentials the guest never sees. ` +
			`Each entry gives the allowed methods, the base path, the calls allowed per execution and the per-call timeout.`,
		InputSchema: &jsonObject{Type: "object"},
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(bool)},
	}
}

// jsonObject is an input schema that takes no arguments.
type jsonObject struct {
	Type string `json:"type"`
}

// capabilitiesHandler answers list_capabilities for the caller of the
// call.
func capabilitiesHandler(opts Options, who identify) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		caller, _, err := who(req.Extra)
		if err != nil {
			return nil, err
		}
		caps := opts.Service.Capabilities(caller)
		return &sdk.CallToolResult{
			StructuredContent: caps,
			Content:           []sdk.Content{&sdk.TextContent{Text: capabilitiesText(caps)}},
		}, nil
	}
}

// capabilitiesText is the list as a model reads it: one line per capability.
func capabilitiesText(caps execution.CapabilityList) string {
	if len(caps.Capabilities) == 0 {
		return "No capabilities are available to this API key."
	}
	var b strings.Builder
	b.WriteString("Capabilities available (name them in execute's capabilities field; the guest calls env.<name>.fetch):\n")
	for _, c := range caps.Capabilities {
		fmt.Fprintf(&b, "- %s: %s under %s, at most %d calls per execution, %d ms per call\n",
			c.Name, strings.Join(c.Methods, ", "), c.BasePath, c.MaxCalls, c.TimeoutMs)
	}
	return b.String()
}
