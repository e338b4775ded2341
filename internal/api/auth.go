package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// AnonymousKey names the caller when no API keys are configured (the
// gateway then only listens on loopback, or auth is disabled).
const AnonymousKey = "anonymous"

type keyCtxKey struct{}

// callerOf is who made the request: the key's name and its own quotas.
func callerOf(ctx context.Context) execution.Caller {
	c, _ := ctx.Value(keyCtxKey{}).(execution.Caller)
	return c
}

// CallerOf is the caller authenticate found for r (for front doors mounted
// in the API, like MCP's).
func CallerOf(r *http.Request) execution.Caller { return callerOf(r.Context()) }

// CallerOfKey is the caller of an API key, with its own quotas.
func CallerOfKey(k auth.Key) execution.Caller {
	return execution.Caller{Name: k.Name, Requests: k.Requests, Concurrency: k.Concurrency, MaxQueued: k.MaxQueued, MaxStoredBytes: k.MaxStoredBytes}
}

// authenticate requires a valid `Authorization: Bearer <key>` when keys are
// configured, of a key whose scope allows the route (scope ScopeExecute: a
// key that may run code; ScopeMetrics: any key), and records the caller's
// name (never the key) in the request context, its log lines and its span.
func authenticate(keys *auth.Keyring, m *metrics.Metrics, scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := execution.Caller{Name: AnonymousKey}
			if keys.Len() == 0 && rebound(r) {
				writeProblem(w, r, execution.NewProblem(execution.ProblemForbiddenHost,
					"with no API keys, a request that reaches a loopback address must name a loopback host, not "+strconvQuote(r.Host)))
				return
			}
			if keys.Len() > 0 {
				key, err := lookupKey(keys, r.Header.Get("Authorization"))
				if err != nil {
					ev := hlog.FromRequest(r).Warn().Str("reason", err.Error())
					label := "unknown"
					if key != nil {
						ev = ev.Str("key", key.Name)
						label = key.Name
					}
					m.AuthFailures.WithLabelValues(label).Inc()
					ev.Msg("authentication failed")
					w.Header().Set("WWW-Authenticate", challenge(r.Header.Get("Authorization") == ""))
					writeProblem(w, r, execution.NewProblem(execution.ProblemUnauthorized, unauthorizedDetail))
					return
				}
				if scope == auth.ScopeExecute && !key.Executes() {
					hlog.FromRequest(r).Warn().Str("key", key.Name).Str("scope", key.Scope).Msg("key not allowed this route")
					w.Header().Set("WWW-Authenticate", `Bearer realm="dynamic-workers", error="insufficient_scope", error_description="`+insufficientDetail+`"`)
					writeProblem(w, r, execution.NewProblem(execution.ProblemInsufficientScope, insufficientDetail))
					return
				}
				c = CallerOfKey(*key)
			}
			zerolog.Ctx(r.Context()).UpdateContext(func(l zerolog.Context) zerolog.Context {
				return l.Str("key", c.Name)
			})
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("gateway.key", c.Name))
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtxKey{}, c)))
		})
	}
}

// unauthorizedDetail says what a refused request lacks: an API key, not
// a login (MCP clients that see a bare 401 offer OAuth).
const unauthorizedDetail = "a valid API key is required, sent as Authorization: Bearer <key>; this gateway uses API keys from its operator, not OAuth"

// insufficientDetail says why a key of scope metrics is refused.
const insufficientDetail = "this API key may only read GET /metrics (its scope is metrics); running code and reading executions need a key of scope execute"

// challenge is the WWW-Authenticate header of a 401 (RFC 6750): the
// Bearer scheme, with the error and a description an MCP client can show
// instead of starting an OAuth flow.
func challenge(missing bool) string {
	code := "invalid_token"
	if missing {
		code = "invalid_request"
	}
	return `Bearer realm="dynamic-workers", error="` + code + `", error_description="` + unauthorizedDetail + `"`
}

// rebound reports whether r reached a loopback address but names another
// host: a web page's own name that DNS rebinding pointed at the gateway
// (the browser then takes the gateway for the page's origin). Without API
// keys, reaching loopback is all it takes to be the operator.
func rebound(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !loopback(local.String()) {
		return false
	}
	return !loopback(r.Host)
}

// loopback reports whether hostport (a port is optional) is localhost or
// a loopback IP address.
func loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

var errMalformedAuth = errors.New("malformed Authorization header")

func lookupKey(keys *auth.Keyring, header string) (*auth.Key, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		if header == "" {
			return nil, errors.New("no Authorization header")
		}
		return nil, errMalformedAuth
	}
	return keys.Lookup(strings.TrimSpace(token))
}

// KeyCallers tells the execution service about keys: the caller of a key
// name as configured now (false for one unknown or revoked; every name is
// a caller when no keys are configured), and the list of them.
func KeyCallers(keys *auth.Keyring) (lookup func(string) (execution.Caller, bool), all func() []execution.Caller) {
	lookup = func(name string) (execution.Caller, bool) {
		if keys.Len() == 0 {
			return execution.Caller{Name: name}, true
		}
		if !keys.Active(name) {
			return execution.Caller{}, false
		}
		for _, k := range keys.All() {
			if k.Name == name {
				return CallerOfKey(k), true
			}
		}
		return execution.Caller{}, false
	}
	all = func() []execution.Caller {
		var out []execution.Caller
		for _, k := range keys.All() {
			out = append(out, CallerOfKey(k))
		}
		return out
	}
	return lookup, all
}
