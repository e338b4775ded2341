package mcp

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
)

// Stored scripts (PUT /scripts/{name}) are offered as two tools of their
// own where the service keeps them: list_scripts, and run_script, whose
// schema requires a script name as execute's requires code.

// scriptTools registers list_scripts and run_script.
func scriptTools(server *sdk.Server, opts Options, who identify) {
	in, err := scriptSchema(opts.Service.Bounds(), opts.Capabilities)
	if err != nil {
		panic("mcp: the run_script tool's schema: " + err.Error()) // openapi.yaml is embedded; its tests fail first
	}
	out, err := outputSchema()
	if err != nil {
		panic("mcp: the output schema: " + err.Error())
	}
	server.AddTool(&sdk.Tool{
		Name:  "run_script",
		Title: "Run a stored script",
		Description: `Run a script stored on the gateway (list_scripts lists them; PUT /scripts/{name} stores one) in a fresh sandbox, as execute runs code: ` +
			`"name" runs its latest version, "name@version" a given one. The script brings its code, npm dependencies and compatibility settings; ` +
			`env is merged over its default env. The result is execute's.`,
		InputSchema:  in,
		OutputSchema: out,
		Annotations:  &sdk.ToolAnnotations{DestructiveHint: new(bool), OpenWorldHint: new(bool)},
	}, executeHandler(opts, who))
	server.AddTool(&sdk.Tool{
		Name:        "list_scripts",
		Title:       "List the stored scripts",
		Description: `List the scripts stored on the gateway for this API key, each with its latest version, modules, npm dependencies and default env; run one with run_script.`,
		InputSchema: &jsonObject{Type: "object"},
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(bool)},
	}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		caller, _, err := who(req.Extra)
		if err != nil {
			return nil, err
		}
		list, err := opts.Service.ListScripts(ctx, caller)
		if err != nil {
			return refusal(err, "")
		}
		return &sdk.CallToolResult{StructuredContent: list, Content: []sdk.Content{&sdk.TextContent{Text: scriptsText(list)}}}, nil
	})
}

// scriptsText is the list as a model reads it: one line per script.
func scriptsText(list execution.ScriptList) string {
	if len(list.Scripts) == 0 {
		return "No scripts are stored for this API key."
	}
	var b strings.Builder
	b.WriteString("Stored scripts (run one with run_script):\n")
	for _, s := range list.Scripts {
		fmt.Fprintf(&b, "- %s@%s: %s", s.Name, s.Version, strings.Join(s.Modules, ", "))
		if len(s.Dependencies) > 0 {
			var deps []string
			for _, name := range slices.Sorted(maps.Keys(s.Dependencies)) {
				deps = append(deps, name+"@"+s.Dependencies[name])
			}
			fmt.Fprintf(&b, "; dependencies %s", strings.Join(deps, ", "))
		}
		if len(s.Env) > 0 {
			fmt.Fprintf(&b, "; env %s", strings.Join(slices.Sorted(maps.Keys(s.Env)), ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}
