package api

import (
	"net/http"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/mcp"
)

// mcpHeadroom is how much larger than an execution request an MCP message
// may be: the JSON-RPC envelope around the tool's arguments.
const mcpHeadroom = 64 << 10

// newMCP returns the /mcp handler: the MCP server on the same service, for
// the caller authenticate found. Its execute tool runs each call as POST
// /execute runs one (validated, limited, counted and answered alike), and
// only executions count against a key's quota (not initialize, tools/list
// or a session's stream). It offers list_capabilities when the gateway has
// capabilities.
func newMCP(svc execution.Service, opts Options) http.Handler {
	return mcp.New(mcp.Options{
		Service:         svc,
		Caller:          CallerOf,
		NewID:           NewID,
		MaxRequestBytes: opts.MaxRequestBytes + mcpHeadroom,
		KeysRequired:    opts.Keys.Len() > 0,
		Capabilities:    len(svc.Capabilities(execution.Caller{}).Capabilities) > 0 || opts.Keys.Len() > 0 && hasCapabilities(svc, opts),
		Version:         opts.Version,
		TooManySessions: handle(func(http.ResponseWriter, *http.Request) error {
			return execution.NewProblem(execution.ProblemRateLimited,
				"this API key has the most MCP sessions open it may have; close one (DELETE /mcp) or let an idle one expire").WithRetryAfter(60)
		}),
	})
}

// hasCapabilities reports whether any configured key may use a capability.
func hasCapabilities(svc execution.Service, opts Options) bool {
	for _, k := range opts.Keys.All() {
		if len(svc.Capabilities(CallerOfKey(k)).Capabilities) > 0 {
			return true
		}
	}
	return false
}
