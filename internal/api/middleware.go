package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/tracing"
)

type ctxKey int

const infoKey ctxKey = iota

// RequestIDHeader carries the id the gateway gives every request, which
// its log lines carry.
const RequestIDHeader = "X-Request-Id"

// ExecutionIDHeader carries the id of the execution a request started
// (POST /execute, POST /executions): its record's id.
const ExecutionIDHeader = "X-Execution-Id"

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random execution id such as "ex_3f7kq2m5c4w6y8a1b9d0e2".
func NewID() string { return newID("ex_") }

// newRequestID returns a random request id such as "req_3f7kq2m5c4w6y8a1b9d0e2".
func newRequestID() string { return newID("req_") }

func newID(prefix string) string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// requestInfo is what the middleware and handlers of one request note of
// it: its id, and the execution it started, if any.
type requestInfo struct {
	id        string
	execution string
}

// withRequestID gives every request an id, in the response header, the
// request context and its log lines.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &requestInfo{id: newRequestID()}
		w.Header().Set(RequestIDHeader, info.id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey, info)))
	})
}

func infoOf(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// executionID is the id of the execution r started, "" if none.
func executionID(ctx context.Context) string { return infoOf(ctx).execution }

// startExecution names the execution r starts: a new execution id, in
// the response header, the request's log lines (its access line too) and
// its span.
func startExecution(w http.ResponseWriter, r *http.Request) string {
	id := NewID()
	infoOf(r.Context()).execution = id
	w.Header().Set(ExecutionIDHeader, id)
	zerolog.Ctx(r.Context()).UpdateContext(func(l zerolog.Context) zerolog.Context {
		return l.Str("execution_id", id)
	})
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("gateway.execution_id", id))
	return id
}

// untraced are the paths whose requests get no span: probes and scrapes,
// which would drown the traces that matter.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// accessLog attaches a request logger (with the request's id, and the
// trace id when it is traced) and, with tracing on, a server span that
// continues the caller's traceparent; it writes one access line per
// request: id, method, route pattern, status, size, duration, remote
// address and user agent.
func accessLog(log zerolog.Logger, m *metrics.Metrics, tr *tracing.Tracing) func(http.Handler) http.Handler {
	access := hlog.AccessHandler(func(r *http.Request, status, size int, d time.Duration) {
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		// By route pattern, never the raw path, so labels stay bounded.
		m.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
		m.HTTPSeconds.WithLabelValues(route, r.Method).Observe(d.Seconds())
		endServerSpan(r, route, status)
		hlog.FromRequest(r).Info().
			Str("method", r.Method).
			Str("route", route).
			Int("status", status).
			Int("size", size).
			Float64("duration_ms", float64(d.Microseconds())/1000).
			Str("remote", r.RemoteAddr).
			Str("user_agent", r.UserAgent()).
			Msg("request")
	})
	return func(next http.Handler) http.Handler {
		inner := access(next)
		withID := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			if tr.Enabled() && !untraced[r.URL.Path] {
				ctx = startServerSpan(ctx, tr, r)
			}
			lc := zerolog.Ctx(ctx).With().Str("request_id", infoOf(ctx).id)
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				lc = lc.Str("trace_id", sc.TraceID().String())
			}
			l := lc.Logger()
			inner.ServeHTTP(w, r.WithContext(l.WithContext(ctx)))
		})
		return hlog.NewHandler(log)(withID)
	}
}

// startServerSpan starts r's span, under the caller's traceparent if it
// sent one. Its name and route come when it ends.
func startServerSpan(ctx context.Context, tr *tracing.Tracing, r *http.Request) context.Context {
	ctx = tracing.Propagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	ctx, _ = tr.Tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("client.address", r.RemoteAddr),
		attribute.String("user_agent.original", r.UserAgent()),
		attribute.String("gateway.request_id", infoOf(ctx).id),
	))
	return ctx
}

// endServerSpan names r's span by its route and ends it with its status.
func endServerSpan(r *http.Request, route string, status int) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetName(r.Method + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// recoverer turns a panic in a handler into a logged 500 problem.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				hlog.FromRequest(r).Error().Interface("panic", v).Bytes("stack", debug.Stack()).Msg("handler panicked")
				writeProblem(w, r, execution.NewProblem(execution.ProblemInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitLifetime bounds a request's life to d from its start, whatever its
// client does: its context ends then (which cancels its execution) and so
// does every write to the client.
func limitLifetime(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			deadline, _ := ctx.Deadline()
			_ = http.NewResponseController(w).SetWriteDeadline(deadline)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
