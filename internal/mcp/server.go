// Package mcp serves the gateway to AI agents as a Model Context Protocol
// server over Streamable HTTP (the official Go SDK): a tool that runs code
// the way POST /execute does, and a resource that explains what a guest
// module looks like. It runs nothing itself: every execution goes through
// the Runner the API hands it, so validation, masking, quotas, limits and
// results are those of POST /execute.
package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
)

// Runner runs one execution for an MCP call, exactly as POST /execute would
// for the HTTP request r that carried the call: args is the request body
// (the tool's arguments), r's context holds the authenticated caller and
// ends when the client goes away, and ctx ends when the call is cancelled.
// It calls log with each console line as the guest writes it, in order and
// before it returns; log never waits for the MCP client (see
// NotifyInterval), so the execution is not held up by it.
type Runner func(ctx context.Context, r *http.Request, args json.RawMessage, log func(execution.Log)) (Outcome, error)

// Outcome is what POST /execute answered: the result of an execution, or
// the problem that kept it from running.
type Outcome struct {
	Result *execution.Result // the result, logs included, as /execute returns it
	// Problem is the application/problem+json body of a refusal (Status is
	// its HTTP status), when Result is nil.
	Problem    json.RawMessage
	Status     int
	RetryAfter string // the refusal's Retry-After header, if any
}

// Options configure the MCP server.
type Options struct {
	Execute Runner
	// Caller names who made a request (the API key's name): a session
	// answers only requests of the caller that opened it.
	Caller func(*http.Request) string
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
	// Capabilities lists the capabilities the caller of r may use (GET
	// /capabilities); nil (no capabilities configured): no list_capabilities tool.
	Capabilities func(r *http.Request) execution.CapabilityList
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
	limit := &sessionLimit{server: server, caller: opts.Caller, max: opts.MaxSessions, refuse: opts.TooManySessions,
		next: bindRequest(opts.Caller, h), owners: map[string]owner{}, opening: map[string]int{}}
	return http.NewCrossOriginProtection().Handler(limit)
}

// addTools registers the server's tools.
func addTools(server *sdk.Server, opts Options) {
	server.AddTool(executeTool(), executeHandler(opts.Execute))
	if opts.Capabilities != nil {
		server.AddTool(capabilitiesTool(), capabilitiesHandler(opts.Capabilities))
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
