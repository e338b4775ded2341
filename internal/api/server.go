// Package api is the gateway's HTTP interface: routes, request validation,
// problem responses and the execute handler. It speaks to the runtimes only
// through execution.Backend, and imports none of them.
package api

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// Options configure the API.
type Options struct {
	// Version is the gateway's version, told to MCP clients ("dev" if empty).
	Version         string
	MaxRequestBytes int64
	Limits          Limits
	OpenAPI         []byte           // served at /openapi.yaml
	Now             func() time.Time // clock for validation; time.Now if nil
	// Heartbeat is how long an SSE stream may stay silent before the
	// gateway sends a comment line; 0 turns heartbeats off.
	Heartbeat time.Duration
	// Keys are the API keys; with none, POST /execute needs no key.
	Keys *auth.Keyring
	// Quota is the default per-key allowance; zero fields mean unlimited.
	Quota Quota
	// WriteTimeout is the longest one write to a client may wait for the
	// client to read (writes are at most 64 KiB); past it the connection is
	// dropped. Default 10s.
	WriteTimeout time.Duration
	// ClientBufferBytes bounds the events an execution may have waiting for
	// a client that reads slower than they come (the result apart); past it
	// the execution is cancelled and the connection dropped. Default: twice
	// Limits.MaxLogBytes plus 1 MiB.
	ClientBufferBytes int
	// MaxLifetime bounds a POST /execute from its start to its last byte,
	// whatever the client does. Default: Limits.MaxTimeout plus 30s.
	MaxLifetime time.Duration
	// Metrics are observed and served at /metrics; New's if nil.
	Metrics *metrics.Metrics
	// MetricsPublic serves /metrics without an API key even when keys are
	// configured.
	MetricsPublic bool
	// Capabilities are the services a request may ask for by name.
	Capabilities Capabilities
	// History records every execution and serves /executions; nil: no
	// records and no /executions routes. NewHandler starts it.
	History *History
}

// lifetimeGrace is how much longer than the longest execution a request may
// last by default: time to wait in the runtime's queue and to send the result.
const lifetimeGrace = 30 * time.Second

// NewHandler returns the gateway's HTTP handler.
func NewHandler(log zerolog.Logger, backend execution.Backend, opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.ClientBufferBytes <= 0 {
		opts.ClientBufferBytes = 2*opts.Limits.MaxLogBytes + 1<<20
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = opts.Limits.MaxTimeout + lifetimeGrace
	}
	if opts.Quota.Requests <= 0 {
		opts.Quota.Requests = 1 << 30
	}
	if opts.Quota.Window <= 0 {
		opts.Quota.Window = time.Minute
	}
	if opts.Quota.Concurrency <= 0 {
		opts.Quota.Concurrency = 1 << 30
	}
	if opts.History != nil {
		opts.History.start(log, &runner{backend: backend, opts: opts, log: log, limits: concurrencyLimits(opts)})
	}
	return routes(log, backend, opts)
}
