// Package api is the gateway's HTTP interface: routes, request validation,
// problem responses and the execute handler. It depends on the small Backend
// interface it declares, not on how executions run.
package api

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// Backend runs executions; internal/loader's backends implement it.
type Backend interface {
	Execute(ctx context.Context, job *loader.Job, emit func(execution.Event) error) error
	Ready(ctx context.Context) error
}

// Options configure the API.
type Options struct {
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
	// Metrics are observed and served at /metrics; New's if nil.
	Metrics *metrics.Metrics
	// MetricsPublic serves /metrics without an API key even when keys are
	// configured.
	MetricsPublic bool
}

// NewHandler returns the gateway's HTTP handler.
func NewHandler(log zerolog.Logger, backend Backend, opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
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
	return routes(log, backend, opts)
}
