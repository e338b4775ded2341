package mcp

import (
	"context"
	_ "embed"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// guideURI names the resource that explains the guest module format.
const guideURI = "dynamic-workers://guide/guest-modules"

//go:embed guide.md
var guide string

// addGuide registers the guest module guide as a resource.
func addGuide(server *sdk.Server) {
	server.AddResource(&sdk.Resource{
		URI:         guideURI,
		Name:        "guest-modules",
		Title:       "Guest code: what the execute tool runs",
		Description: "The code the execute tool runs: plain scripts and their return value, Worker modules, env and secrets, console output, errors, TypeScript, several modules.",
		MIMEType:    "text/markdown",
	}, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: guideURI, MIMEType: "text/markdown", Text: guide}}}, nil
	})
}
