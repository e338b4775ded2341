package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"

	"github.com/dynamic-workers/gateway/internal/tracing"
)

// startTracing sets up the traces the OTEL_* variables ask for. The
// OpenTelemetry SDK reports its own errors (an exporter that cannot reach
// its collector) through a handler of the process: they go to the log.
func startTracing(ctx context.Context, getenv func(string) string, log zerolog.Logger) (*tracing.Tracing, error) {
	tr, err := tracing.Setup(ctx, getenv, version)
	if err != nil || !tr.Enabled() {
		return tr, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("tracing: exporting spans failed")
	}))
	return tr, nil
}

// stopTracing exports the spans still buffered, within a few seconds.
func stopTracing(tr *tracing.Tracing, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("tracing: the last spans were not all exported")
	}
}

// tracingDescription says where spans go, for the start line.
func tracingDescription(tr *tracing.Tracing) string {
	if !tr.Enabled() {
		return "off"
	}
	return "otlp " + tr.Exporter
}
