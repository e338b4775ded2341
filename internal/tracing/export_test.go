package tracing

import sdktrace "go.opentelemetry.io/otel/sdk/trace"

// NewForTest is tracing that hands every span to processor (tests).
func NewForTest(processor sdktrace.SpanProcessor) *Tracing {
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor), sdktrace.WithIDGenerator(ids{}))
	return &Tracing{provider: provider, tracer: provider.Tracer(Name), Exporter: "test"}
}
