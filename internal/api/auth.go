package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// Quota is the default per-key allowance; keys may override it.
type Quota struct {
	Requests    int           // executions started per Window
	Window      time.Duration //
	Concurrency int           // executions running at once
}

// AnonymousKey names the caller when no API keys are configured (the
// gateway then only listens on loopback, or auth is disabled).
const AnonymousKey = "anonymous"

type keyCtxKey struct{}

// caller is who made a request: the key's name and its quotas.
type caller struct {
	name        string
	requests    int
	concurrency int
	maxQueued   int // queued executions; 0: the History's default
}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(keyCtxKey{}).(caller)
	return c
}

// authenticate requires a valid `Authorization: Bearer <key>` when keys are
// configured, and records the caller's name (never the key) in the request
// context and its log lines.
func authenticate(keys *auth.Keyring, quota Quota, m *metrics.Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := caller{name: AnonymousKey, requests: quota.Requests, concurrency: quota.Concurrency}
			if keys.Len() == 0 && rebound(r) {
				writeProblem(w, r, newProblem(http.StatusForbidden, execution.ProblemForbiddenHost,
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
					w.Header().Set("WWW-Authenticate", `Bearer realm="dynamic-workers"`)
					writeProblem(w, r, newProblem(http.StatusUnauthorized, execution.ProblemUnauthorized,
						"a valid API key is required: Authorization: Bearer <key>"))
					return
				}
				c.name = key.Name
				if key.Requests > 0 {
					c.requests = key.Requests
				}
				if key.Concurrency > 0 {
					c.concurrency = key.Concurrency
				}
				c.maxQueued = key.MaxQueued
			}
			zerolog.Ctx(r.Context()).UpdateContext(func(l zerolog.Context) zerolog.Context {
				return l.Str("key", c.name)
			})
			ctx := context.WithValue(r.Context(), keyCtxKey{}, c)
			ctx = httprate.WithRequestLimit(ctx, c.requests)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
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

// rateLimit limits each key to its requests per window (go-chi/httprate),
// answering 429 problems with Retry-After and X-RateLimit-* headers.
func rateLimit(quota Quota, m *metrics.Metrics) func(http.Handler) http.Handler {
	return httprate.LimitBy(quota.Requests, quota.Window,
		func(r *http.Request) (string, error) { return callerOf(r.Context()).name, nil },
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			hlog.FromRequest(r).Warn().Msg("rate limited")
			m.Limited.WithLabelValues(callerOf(r.Context()).name, "rate").Inc()
			writeProblem(w, r, newProblem(http.StatusTooManyRequests, execution.ProblemRateLimited,
				"this API key started its quota of executions for the current window; retry after Retry-After seconds"))
		}),
	)
}

// concurrencyLimit bounds the executions each key has running at once:
// those it serves and the key's queued executions that h's workers run on
// this gateway (h may be nil).
func concurrencyLimit(m *metrics.Metrics, h *History) func(http.Handler) http.Handler {
	var mu sync.Mutex
	running := map[string]int{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := callerOf(r.Context())
			mu.Lock()
			if running[c.name]+h.runningHere(c.name) >= c.concurrency {
				mu.Unlock()
				hlog.FromRequest(r).Warn().Int("limit", c.concurrency).Msg("concurrency limited")
				m.Limited.WithLabelValues(c.name, "concurrency").Inc()
				p := newProblem(http.StatusTooManyRequests, execution.ProblemConcurrencyLimited,
					"this API key has "+strconv.Itoa(c.concurrency)+" executions running, its limit; retry when one ends")
				p.retryAfter = 1
				writeProblem(w, r, p)
				return
			}
			running[c.name]++
			mu.Unlock()
			defer func() {
				mu.Lock()
				if running[c.name]--; running[c.name] == 0 {
					delete(running, c.name)
				}
				mu.Unlock()
			}()
			next.ServeHTTP(w, r)
		})
	}
}
