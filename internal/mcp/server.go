//lint:file-ignore SA1019 MCP logging is deprecated as of protocol 2026-07-28 but works for at least twelve months; sessions get a default log level so clients that send no progress token still see console lines.

// Package mcp serves the gateway to AI agents as a Model Context Protocol
// server (the official Go SDK), over Streamable HTTP in the API or over
// stdio (gateway mcp): a tool that runs code the way POST /execute does,
// and a resource that explains what guest code looks like. It runs nothing itself: every execution goes to the
// execution service, as POST /execute's does, so validation, masking,
// quotas, limits and results are the same.
package mcp

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// Options configure the MCP server.
type Options struct {
	// Service runs the executions, as it does POST /execute's.
	Service execution.Service
	// Caller is who made a request (authenticated before): a session
	// answers only requests of the caller that opened it. Served over
	// stdio, the server has one caller, Serve's.
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
	`Call the execute tool with plain code (it runs as the body of an async function: await and return work, and what it returns comes back as returnValue) ` +
	`or with an ES module whose default export has a fetch(request, env, ctx) handler returning a Response. ` +
	`You get back what it printed with console.*, what it returned, or the error it threw. ` +
	`Guests have no network unless allowOutbound allows it, no file system and no Node.js built-ins. ` +
	`The resource ` + guideURI + ` explains the format in full.`

// DefaultLogLevel is the level of the log messages a session gets before
// its client sets one (logging/setLevel): console.log, info, warn and
// error lines, not debug.
const DefaultLogLevel sdk.LoggingLevel = "info"

// identify is who made a tool call, and the logger its execution logs to:
// from the HTTP request that carried it, or the one caller of a stdio
// server.
type identify func(*sdk.RequestExtra) (execution.Caller, zerolog.Logger, error)

// New returns the HTTP handler of the MCP endpoint (GET, POST and DELETE,
// as Streamable HTTP uses them). The caller must be authenticated before.
func New(opts Options) http.Handler {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.TooManySessions == nil {
		opts.TooManySessions = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "too many MCP sessions open", http.StatusTooManyRequests)
		})
	}
	server := newServer(opts, func(extra *sdk.RequestExtra) (execution.Caller, zerolog.Logger, error) {
		r := httpRequest(extra)
		if r == nil {
			return execution.Caller{}, zerolog.Logger{}, errors.New("a call without its HTTP request")
		}
		return opts.Caller(r), *zerolog.Ctx(r.Context()), nil
	})
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, &sdk.StreamableHTTPOptions{
		SessionTimeout:             opts.SessionTimeout,
		MaxRequestBodyBytes:        opts.MaxRequestBytes,
		DisableLocalhostProtection: opts.KeysRequired,
	})
	name := func(r *http.Request) string { return opts.Caller(r).Name }
	limit := &sessionLimit{server: server, caller: name, max: opts.MaxSessions, refuse: opts.TooManySessions,
		next: bindRequest(name, h), owners: map[string]owner{}, opening: map[string]int{}}
	return noteCalls(http.NewCrossOriginProtection().Handler(limit))
}

// Serve serves one client over t (gateway mcp: stdin and stdout) as
// caller, logging to log, until the client goes away or ctx ends.
func Serve(ctx context.Context, t sdk.Transport, caller execution.Caller, log zerolog.Logger, opts Options) error {
	server := newServer(opts, func(*sdk.RequestExtra) (execution.Caller, zerolog.Logger, error) {
		return caller, log, nil
	})
	return server.Run(ctx, t)
}

// newServer is the MCP server: its tools, its guide, and the default log
// level of its sessions.
func newServer(opts Options, who identify) *sdk.Server {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	server := sdk.NewServer(&sdk.Implementation{Name: "dynamic-workers-gateway", Title: "Dynamic Workers gateway", Version: opts.Version},
		&sdk.ServerOptions{Instructions: instructions})
	tool, err := executeTool(opts.Service.Bounds(), opts.Capabilities)
	if err != nil {
		panic("mcp: the execute tool's schema: " + err.Error()) // openapi.yaml is embedded; its tests fail first
	}
	server.AddTool(tool, executeHandler(opts, who))
	if opts.Capabilities {
		server.AddTool(capabilitiesTool(), capabilitiesHandler(opts, who))
	}
	if opts.Service.Recording() {
		scriptTools(server, opts, who)
	}
	addGuide(server)
	server.AddReceivingMiddleware(DefaultLogLevelMiddleware, noteMethods)
	return server
}

// DefaultLogLevelMiddleware sets a session's log level to DefaultLogLevel once it is
// initialized, as if its client had asked (the SDK sends no log message
// to a client that has not); a client's own logging/setLevel then changes
// it.
func DefaultLogLevelMiddleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		res, err := next(ctx, method, req)
		if method == "initialize" && err == nil {
			if ss, ok := req.GetSession().(*sdk.ServerSession); ok {
				_, _ = next(ctx, "logging/setLevel", &sdk.ServerRequest[*sdk.SetLoggingLevelParams]{
					Session: ss, Params: &sdk.SetLoggingLevelParams{Level: DefaultLogLevel}})
			}
		}
		return res, err
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
