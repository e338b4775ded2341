// Package apitest builds the gateways the tests of the gateway and of its
// clients serve with (the execution service and the HTTP front door in
// front of it), so they agree on limits and on the clock.
package apitest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/store"
)

// Now is the clock tests validate compatibility dates against.
var Now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// Gateway is what a test gateway is made of: the front door's options and
// the service's.
type Gateway struct {
	api.Options
	Limits       executions.Limits
	Now          func() time.Time
	Quota        executions.Quota
	Capabilities executions.Capabilities
	// Store keeps records (the test closes it); nil: none.
	Store   store.Store
	Records executions.RecordOptions
	// Packages resolves dependencies; nil: none.
	Packages *packages.Manager
}

// Options returns a gateway with small, fixed limits and the test clock.
func Options() Gateway {
	return Gateway{
		Options: api.Options{MaxRequestBytes: 1 << 20},
		Now:     func() time.Time { return Now },
		Limits: executions.Limits{
			CompatibilityDate: "2026-11-16",
			DefaultTimeout:    10 * time.Second,
			MaxTimeout:        30 * time.Second,
			MaxResponseBytes:  1 << 20,
			MaxLogLineBytes:   64 << 10,
			MaxLogBytes:       1 << 20,
			MaxCodeBytes:      512 << 10,
			MaxModules:        8,
			MaxEnvBytes:       64 << 10,
		},
	}
}

// Handler builds the service on backend, starts it, and returns the HTTP
// handler in front of it and the service; the service is closed when the
// test ends (before the store, which the test closes).
func Handler(tb testing.TB, log zerolog.Logger, backend execution.Backend, g Gateway) (http.Handler, *executions.Service) {
	tb.Helper()
	if g.Metrics == nil {
		g.Metrics = metrics.New() // one registry: the service's and the front door's
	}
	svc := Service(log, backend, g)
	svc.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Close(ctx)
	})
	return api.NewHandler(log, svc, Front(g)), svc
}

// Service is the execution service of g on backend, not started.
func Service(log zerolog.Logger, backend execution.Backend, g Gateway) *executions.Service {
	lookup, all := api.KeyCallers(g.Keys)
	return executions.New(executions.Options{
		Backend: backend, Store: g.Store, Limits: g.Limits, Capabilities: g.Capabilities, Quota: g.Quota, Packages: g.Packages,
		Keys: lookup, Callers: all, Metrics: g.Metrics, Log: log, Now: g.Now, Records: g.Records, Tracer: g.Tracing.Tracer(),
	})
}

// Front is g's front-door options, their defaults derived from its limits
// as the gateway's own are.
func Front(g Gateway) api.Options {
	o := g.Options
	if o.ClientBufferBytes <= 0 {
		o.ClientBufferBytes = 2*g.Limits.MaxLogBytes + 1<<20
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = g.Limits.MaxTimeout + 30*time.Second
	}
	return o
}

// NewKey makes an API key for a test: the key a client sends, and the
// configured entry (name and hash) that accepts it; quota fields and Revoked
// are the caller's to set.
func NewKey(tb testing.TB, name string) (string, auth.Key) {
	tb.Helper()
	key, hash, err := auth.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := auth.ParseHash(hash)
	if err != nil {
		tb.Fatal(err)
	}
	return key, auth.Key{Name: name, Hash: sum}
}

// Serve is Handler's handler alone.
func Serve(tb testing.TB, log zerolog.Logger, backend execution.Backend, g Gateway) http.Handler {
	tb.Helper()
	h, _ := Handler(tb, log, backend, g)
	return h
}
