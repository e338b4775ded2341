// Package mcp serves the gateway to AI agents as a Model Context Protocol
// server over Streamable HTTP (the official Go SDK): a tool that runs code
// the way POST /execute does, and a resource that explains what a guest
// module looks like. It runs nothing itself: every execution goes to the
// execution service, as POST /execute's does, so validation, masking,
// quotas, limits and results are the same.
package mcp

import (
	"context"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
)

// Options configure the MCP server.
type Options struct {
	// Service runs the executions, as it does POST /execute's.
	Service execution.Service
	// Caller is who made a request (authenticated before): a session
	// answers only requests of the caller that opened it.
	Caller func(*http.Request) execution.Caller
	// NewID names an execution, as the API names its requests'.
	NewID func() string
	// MaxRequestBytes bounds a request body; a message wraps an execution
	// request, so give it some room above POST /execute's bound.
	MaxRequestBytes int64
	// SessionTimeout closes a session idle that long; default 30 minutes.
	SessionTimeout time.Duration
	// Version is the gateway's version, told to clients at initialize.
	Version string
	// KeysRequired says every request carries a checked API key. Without
	// keys the SDK's DNS rebinding protection is on: a request that reached
	// a loopback address must name a loopback Host. With keys it is off, so
	// a reverse proxy on the same host may forward any Host: a rebound page
	// has no key.
	KeysRequired bool
	// Capabilities offers the list_capabilities tool (the gateway has
	// capabilities configured).
	Capabilities bool
	// MaxSessions bounds the sessions one caller may have open; default
	// DefaultMaxSessions. TooManySessions answers a request that would open
	// one more (default: a plain 429).
	MaxSessions     int
	TooManySessions http.Handler
}

// DefaultSessionTimeout is how long a session may stay idle by default.
const DefaultSessionTimeout = 30 * time.Minute

// instructions is what the server tells a client about itself at initialize.
const instructions = `This server runs JavaScript or TypeScript in fresh, isolated V8 sandboxes (Cloudflare Dynamic Workers). ` +
	`Call the execute tool with an ES module whose default export has an async fetch(request, env, ctx) handler that returns a Response; ` +
	`you get back what it printed with console.*, the Response it returned, or the error it threw. ` +
	`Guests have no network unless allowOutbound allows it. ` +
	`The resource ` + guideURI + ` explains the module format in full.`

// New returns the HTTP handler of the MCP endpoint (GET, POST and DELETE,
// as Streamable HTTP uses them). The caller must be authenticated before.
func New(opts Options) http.Handler {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.TooManySessions == nil {
		opts.TooManySessions = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "too many MCP sessions open", http.StatusTooManyRequests)
		})
	}
	server := sdk.NewServer(&sdk.Implementation{Name: "dynamic-workers-gateway", Title: "Dynamic Workers gateway", Version: opts.Version},
		&sdk.ServerOptions{Instructions: instructions})
	addTools(server, opts)
	addGuide(server)
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, &sdk.StreamableHTTPOptions{
		SessionTimeout:             opts.SessionTimeout,
		MaxRequestBodyBytes:        opts.MaxRequestBytes,
		DisableLocalhostProtection: opts.KeysRequired,
	})
	name := func(r *http.Request) string { return opts.Caller(r).Name }
	limit := &sessionLimit{server: server, caller: name, max: opts.MaxSessions, refuse: opts.TooManySessions,
		next: bindRequest(name, h), owners: map[string]owner{}, opening: map[string]int{}}
	return http.NewCrossOriginProtection().Handler(limit)
}

// addTools registers the server's tools.
func addTools(server *sdk.Server, opts Options) {
	server.AddTool(executeTool(), executeHandler(opts))
	if opts.Capabilities {
		server.AddTool(capabilitiesTool(), capabilitiesHandler(opts))
	}
}

// requestExtra is the TokenInfo.Extra key of the HTTP request.
const requestExtra = "dynamic-workers/request"

// bindRequest hands each HTTP request to the SDK with a TokenInfo, the only
// thing of an HTTP request the SDK passes on to a tool call. Its UserID is
// the caller's name, so the SDK refuses a session's requests from any other
// key (403), and its Extra holds the request itself, in whose context an
// execution runs. The SDK sets a TokenInfo only through its bearer-token
// middleware, which needs a Bearer header: it sees a stand-in one (the key
// was checked before this handler; with auth disabled there may be none),
// and the SDK the request's own headers.
func bindRequest(caller func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &auth.TokenInfo{UserID: caller(r), Extra: map[string]any{requestExtra: r}}
		verify := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return info, nil }
		header := r.Header
		restore := http.HandlerFunc(func(w http.ResponseWriter, rr *http.Request) {
			rr.Header = header
			next.ServeHTTP(w, rr)
		})
		stand := r.Clone(r.Context())
		stand.Header.Set("Authorization", "Bearer checked")
		auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(restore).ServeHTTP(w, stand)
	})
}

// httpRequest returns the HTTP request that carried a call, set by bindRequest.
func httpRequest(extra *sdk.RequestExtra) *http.Request {
	if extra == nil || extra.TokenInfo == nil {
		return nil
	}
	r, _ := extra.TokenInfo.Extra[requestExtra].(*http.Request)
	return r
}
