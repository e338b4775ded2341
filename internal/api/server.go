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
	"github.com/dynamic-workers/gateway/internal/loader"
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
}

// NewHandler returns the gateway's HTTP handler.
func NewHandler(log zerolog.Logger, backend Backend, opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return routes(log, backend, opts)
}
