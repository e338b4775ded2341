// Package api is the gateway's HTTP front door: routes, authentication,
// content negotiation, problem responses, and the rendering of executions
// as JSON, NDJSON and Server-Sent Events. It decodes a request, hands it
// to the execution service (execution.Service), and encodes what the
// service answers; it runs, validates and records nothing itself, and
// imports neither the store nor the runtimes.
package api

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/tracing"
)

// Options configure the HTTP front door.
type Options struct {
	// Version is the gateway's version, told to MCP clients ("dev" if empty).
	Version         string
	MaxRequestBytes int64
	OpenAPI         []byte // served at /openapi.yaml
	// Heartbeat is how long an SSE stream may stay silent before the
	// gateway sends a comment line; 0 turns heartbeats off.
	Heartbeat time.Duration
	// Keys are the API keys; with none, every request is the anonymous
	// caller's.
	Keys *auth.Keyring
	// WriteTimeout is the longest one write to a client may wait for the
	// client to read (writes are at most 64 KiB); past it the connection is
	// dropped. Default 10s.
	WriteTimeout time.Duration
	// ClientBufferBytes bounds the events an execution may have waiting for
	// a client that reads slower than they come (the result apart); past it
	// the execution is cancelled and the connection dropped. Default 3 MiB
	// (the composer sets twice the log budget plus 1 MiB).
	ClientBufferBytes int
	// MaxLifetime bounds a POST /execute from its start to its last byte,
	// whatever the client does. Default 90s (the composer sets the longest
	// timeout plus 30s).
	MaxLifetime time.Duration
	// Metrics are observed and served at /metrics; New's if nil.
	Metrics *metrics.Metrics
	// MetricsPublic serves /metrics without an API key even when keys are
	// configured.
	MetricsPublic bool
	// Tracing, when enabled, gives each request a span that continues the
	// caller's traceparent; nil: off.
	Tracing *tracing.Tracing
}

// NewHandler returns the gateway's HTTP handler in front of svc.
func NewHandler(log zerolog.Logger, svc execution.Service, opts Options) http.Handler {
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.ClientBufferBytes <= 0 {
		opts.ClientBufferBytes = 3 << 20
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = 90 * time.Second
	}
	return routes(log, svc, opts)
}
