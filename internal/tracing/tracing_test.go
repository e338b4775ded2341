package tracing_test

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dynamic-workers/gateway/internal/tracing"
)

func TestSetup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		exporter string // "" off
		err      string
	}{
		{"nothing set", nil, "", ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http/protobuf http://collector:4318/v1/traces", ""},
		{"traces endpoint as is", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}, "http/protobuf http://c:4318/custom", ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc http://c:4317", ""},
		{"disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, "", ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, "", ""},
		{"another exporter", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, "", "over OTLP only"},
		{"json protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "", "http/protobuf or grpc"},
		{"not a URL", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "", "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := tracing.Setup(t.Context(), func(k string) string { return tt.env[k] }, "test")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Setup = %v, want an error saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.Enabled() != (tt.exporter != "") || tr.Exporter != tt.exporter {
				t.Errorf("Setup: enabled %v, exporter %q; want %q", tr.Enabled(), tr.Exporter, tt.exporter)
			}
		})
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := tracing.Continue(context.Background(), tp)
	if got := tracing.Traceparent(ctx); got != tp {
		t.Errorf("Traceparent(Continue(%s)) = %s", tp, got)
	}
	if got := tracing.TraceID(tp); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceID = %q", got)
	}
	for _, bad := range []string{"", "00-0000-00-01", "junk", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if got := tracing.TraceID(bad); got != "" {
			t.Errorf("TraceID(%q) = %q, want none", bad, got)
		}
		if got := tracing.Traceparent(tracing.Continue(context.Background(), bad)); got != "" {
			t.Errorf("Traceparent(Continue(%q)) = %q, want none", bad, got)
		}
	}
}

// TestStartAs: a span takes the id the shim chose, under its parent; the
// spans started afterwards get ids of their own.
func TestStartAs(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tr := tracing.NewForTest(rec)
	ctx, parent := tr.Tracer().Start(context.Background(), "runtime")
	id, err := tracing.ParseSpanID("0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	tracing.StartAs(ctx, tr.Tracer(), id, "capability x").End()
	_, other := tr.Tracer().Start(ctx, "other")
	other.End()
	parent.End()
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	c := spans["capability x"]
	if c == nil || c.SpanContext().SpanID() != id || c.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("capability span = %v, want id %s under the runtime's", c, id)
	}
	if spans["other"].SpanContext().SpanID() == id {
		t.Error("a later span took the chosen id too")
	}
	if _, err := tracing.ParseSpanID("0000000000000000"); err == nil {
		t.Error("ParseSpanID(all zero) succeeded")
	}
	var _ trace.Span = other
}
