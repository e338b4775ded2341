// Package tracing sets up the gateway's OpenTelemetry traces, from the
// standard OTEL_* environment variables: spans exported over OTLP when an
// OTLP endpoint is configured, and none at all otherwise (the tracer is
// then OpenTelemetry's no-op one, and no caller's traceparent is read).
//
// The other packages use only the OpenTelemetry API (a trace.Tracer handed
// to them); this one holds what they share beyond it: a span context as a
// W3C traceparent string, the form in which an execution's record keeps
// the trace it continues, and spans whose id another party chose (the
// shim names each capability call's span in the traceparent it sends the
// capability's service).
package tracing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of the gateway's spans, and the
// service.name unless OTEL_SERVICE_NAME says otherwise.
const Name = "dynamic-workers-gateway"

// Tracing is the gateway's tracer provider: exporting, or off.
type Tracing struct {
	provider *sdktrace.TracerProvider // nil: off
	tracer   trace.Tracer
	// Exporter says where spans go: "" when off, else the protocol and
	// endpoint ("http/protobuf http://collector:4318/v1/traces").
	Exporter string
}

// Off is tracing turned off: a no-op tracer.
func Off() *Tracing { return &Tracing{tracer: noop.NewTracerProvider().Tracer(Name)} }

// Setup reads the OTEL_* variables through getenv and returns tracing as
// they configure it. It is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set, unless OTEL_SDK_DISABLED is true or
// OTEL_TRACES_EXPORTER is "none"; the protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
// http/protobuf (the default) or grpc. The exporter reads the rest of the
// OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression,
// certificates) and the SDK OTEL_TRACES_SAMPLER and OTEL_BSP_*, as they
// are specified.
func Setup(ctx context.Context, getenv func(string) string, version string) (*Tracing, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return Off(), nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "otlp":
	case "none":
		return Off(), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: the gateway exports traces over OTLP only (otlp or none)", exp)
	}
	endpoint := first(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		if base := first(getenv, "OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			endpoint = base
			if protocol(getenv) != "grpc" {
				// The signal's path goes under the base (OTLP/HTTP).
				endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
			}
		}
	}
	if endpoint == "" {
		return Off(), nil
	}
	if u, err := url.Parse(endpoint); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("OTLP traces endpoint %q is not a URL (http://host:4318)", endpoint)
	}
	exporter, err := newExporter(ctx, protocol(getenv), endpoint)
	if err != nil {
		return nil, err
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(serviceResource(getenv, version)),
		sdktrace.WithIDGenerator(ids{}),
	)
	return &Tracing{provider: provider, tracer: provider.Tracer(Name, trace.WithInstrumentationVersion(version)),
		Exporter: protocol(getenv) + " " + endpoint}, nil
}

func first(getenv func(string) string, key string) string { return strings.TrimSpace(getenv(key)) }

// protocol is the OTLP protocol the variables ask for.
func protocol(getenv func(string) string) string {
	p := first(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = first(getenv, "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p == "" {
		return "http/protobuf"
	}
	return p
}

func newExporter(ctx context.Context, protocol, endpoint string) (sdktrace.SpanExporter, error) {
	switch protocol {
	case "http/protobuf":
		return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	case "grpc":
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	}
	return nil, fmt.Errorf("OTLP protocol %q: the gateway speaks http/protobuf or grpc", protocol)
}

// serviceResource names the gateway in its spans: OTEL_SERVICE_NAME (else
// Name), its version, and OTEL_RESOURCE_ATTRIBUTES (key=value,…).
func serviceResource(getenv func(string) string, version string) *resource.Resource {
	var attrs []attribute.KeyValue
	for pair := range strings.SplitSeq(getenv("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		if uv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = uv
		}
		attrs = append(attrs, attribute.String(strings.TrimSpace(k), v))
	}
	name := first(getenv, "OTEL_SERVICE_NAME")
	if name == "" {
		name = Name
	}
	attrs = append(attrs, attribute.String("service.name", name), attribute.String("service.version", version))
	return resource.NewSchemaless(attrs...)
}

// Tracer is the tracer every span of the gateway starts from (a no-op one
// for nil).
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer(Name)
	}
	return t.tracer
}

// Enabled reports whether spans are exported (false for nil).
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// propagator reads and writes W3C traceparent (and tracestate) headers.
var propagator = propagation.TraceContext{}

// Propagator is how a trace crosses HTTP: W3C Trace Context.
func Propagator() propagation.TextMapPropagator { return propagator }

// Traceparent is the W3C traceparent of ctx's span ("00-<trace id>-<span
// id>-<flags>"), or "" when ctx has no valid one (tracing is off).
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// Continue is ctx with traceparent (Traceparent's form) as its remote
// parent: the spans started from it join that trace. An empty or invalid
// traceparent leaves ctx as it is.
func Continue(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// TraceID is the trace id in a traceparent, or "".
func TraceID(traceparent string) string {
	sc := trace.SpanContextFromContext(Continue(context.Background(), traceparent))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

type spanIDKey struct{}

// StartAs starts a span under ctx's whose id is id, a span id another
// party chose and has used already: the shim sends a capability call with
// a traceparent naming its span, and the gateway records that span
// afterwards, under the same id. Only the span comes back, not a context:
// nothing starts under it here. An invalid id gets a random one.
func StartAs(ctx context.Context, tracer trace.Tracer, id trace.SpanID, name string, opts ...trace.SpanStartOption) trace.Span {
	if id.IsValid() {
		ctx = context.WithValue(ctx, spanIDKey{}, id)
	}
	_, span := tracer.Start(ctx, name, opts...)
	return span
}

// ErrBadSpanID is a span id that is not 16 hex digits, not all zero.
var ErrBadSpanID = errors.New("a span id is 16 hex digits, not all zero")

// ParseSpanID reads a span id written as hex.
func ParseSpanID(s string) (trace.SpanID, error) {
	id, err := trace.SpanIDFromHex(s)
	if err != nil {
		return id, ErrBadSpanID
	}
	return id, nil
}

// ids makes random trace and span ids, or the span id WithSpanID set.
type ids struct{}

func (ids) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, ids{}.NewSpanID(ctx, tid)
}

func (ids) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if id, ok := ctx.Value(spanIDKey{}).(trace.SpanID); ok {
		return id
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}
