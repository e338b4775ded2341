package executions

import (
	"context"
	"errors"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/tracing"
)

// The spans of an execution, under the front door's (the HTTP request's),
// or for a queued execution under the submission's, whose traceparent its
// record keeps:
//
//	admission     the key's quotas, validation and grants (and, queued,
//	              the enqueue)
//	queue wait    from the submission to the claim (queued, first run)
//	execution     the run, with its outcome
//	  transpile   TypeScript bundled into one module
//	  runtime     one call of the backend (more after a restart)
//	    capability <name>   each call the shim sent a capability's
//	                        service, under the span id its traceparent
//	                        named
//
// Each carries the execution id and the key's name; never code, env,
// secrets or a capability's URL.

// span starts the span name of execution id, of caller's.
func (s *Service) span(ctx context.Context, name, id, caller string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if _, off := s.opts.Tracer.(noop.Tracer); off {
		return ctx, noop.Span{} // tracing off: not even a context to make
	}
	ctx, span := s.opts.Tracer.Start(ctx, name, opts...)
	if span.IsRecording() { // not sampled: nothing to build
		span.SetAttributes(attribute.String("gateway.execution_id", id), attribute.String("gateway.key", caller))
	}
	return ctx, span
}

// endSpan ends span, marking it failed with err's problem code or text.
func endSpan(span trace.Span, err error) {
	if err != nil {
		var p *execution.Problem
		if errors.As(err, &p) {
			span.SetAttributes(attribute.String("gateway.problem", p.Code))
			span.SetStatus(codes.Error, p.Code)
		} else {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// endExecution ends the execution's span with its outcome.
func endExecution(span trace.Span, final *execution.Result, err error) {
	if final != nil {
		outcome := "success"
		if final.Error != nil {
			outcome = string(knownCode(final.Error.Code))
			span.SetStatus(codes.Error, outcome)
		}
		span.SetAttributes(attribute.String("gateway.outcome", outcome))
		span.End()
		return
	}
	endSpan(span, err)
}

// queueWait records the span of a queued execution's wait, from its
// submission to now.
func (s *Service) queueWait(ctx context.Context, id, caller string, queued time.Time) {
	_, span := s.span(ctx, "queue wait", id, caller, trace.WithTimestamp(queued))
	span.End()
}

// callSpans records, under ctx's span (the runtime call's), a span for each
// capability call the shim reports it sent with a traceparent, as it timed
// it, and takes the report out of the call: it is not part of the result.
func (s *Service) callSpans(ctx context.Context, id, caller string, calls []execution.Outgoing) {
	for i := range calls {
		t := calls[i].Trace
		calls[i].Trace = nil
		if t == nil {
			continue
		}
		sid, err := tracing.ParseSpanID(t.SpanID)
		if err != nil || t.Start <= 0 || math.IsInf(t.Ms, 0) || t.Ms < 0 {
			continue // not what the shim writes
		}
		start := time.UnixMicro(int64(t.Start * 1000))
		span := tracing.StartAs(ctx, s.opts.Tracer, sid, "capability "+calls[i].Capability,
			trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start), trace.WithAttributes(
				attribute.String("gateway.execution_id", id), attribute.String("gateway.key", caller),
				attribute.String("gateway.capability", calls[i].Capability),
				attribute.String("http.request.method", calls[i].Method)))
		if calls[i].Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", calls[i].Status))
		}
		if calls[i].Status == 0 || calls[i].Status >= 500 {
			span.SetStatus(codes.Error, "no answer, or a server error")
		}
		span.End(trace.WithTimestamp(start.Add(time.Duration(t.Ms * float64(time.Millisecond)))))
	}
}
