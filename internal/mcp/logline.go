package mcp

import (
	"context"
	"net/http"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"
)

// calls are the MCP methods one HTTP request carried, and the tools they
// called, for its access line: "mcp_method":"tools/call",
// "mcp_tool":"execute" (comma-separated for a batch).
type calls struct {
	mu      sync.Mutex
	methods []string
	tools   []string
}

type callsKey struct{}

// noteCalls gives each request a list of the calls it carries, which
// noteMethods fills, and puts it on the request's log lines when the SDK
// has answered. A notification the SDK handles after its 202 may be
// missing from the line.
func noteCalls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &calls{}
		r = r.WithContext(context.WithValue(r.Context(), callsKey{}, c))
		next.ServeHTTP(w, r)
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.methods) == 0 {
			return
		}
		zerolog.Ctx(r.Context()).UpdateContext(func(l zerolog.Context) zerolog.Context {
			l = l.Str("mcp_method", strings.Join(c.methods, ","))
			if len(c.tools) > 0 {
				l = l.Str("mcp_tool", strings.Join(c.tools, ","))
			}
			return l
		})
	})
}

// noteMethods is the SDK middleware that adds each method a request
// carries (and the tool of a tools/call) to its calls.
func noteMethods(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if r := httpRequest(req.GetExtra()); r != nil {
			if c, ok := r.Context().Value(callsKey{}).(*calls); ok {
				c.mu.Lock()
				c.methods = append(c.methods, method)
				if p, ok := req.GetParams().(*sdk.CallToolParamsRaw); ok {
					c.tools = append(c.tools, p.Name)
				}
				c.mu.Unlock()
			}
		}
		return next(ctx, method, req)
	}
}
