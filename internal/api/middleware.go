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

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

type ctxKey int

const idKey ctxKey = iota

// ExecutionIDHeader carries the id the gateway gives every request.
const ExecutionIDHeader = "X-Execution-Id"

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random execution id such as "ex_3f7kq2m5c4w6y8a1b9d0e2".
func NewID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return "ex_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// withExecutionID gives every request an id, in the response header, the
// request context and its log lines.
func withExecutionID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewID()
		w.Header().Set(ExecutionIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), idKey, id)))
	})
}

func executionID(ctx context.Context) string {
	id, _ := ctx.Value(idKey).(string)
	return id
}

// accessLog attaches a request logger (with the request's id) and writes one
// access line per request: id, method, route pattern, status, size, duration.
func accessLog(log zerolog.Logger, m *metrics.Metrics) func(http.Handler) http.Handler {
	access := hlog.AccessHandler(func(r *http.Request, status, size int, d time.Duration) {
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		// By route pattern, never the raw path, so labels stay bounded.
		m.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
		m.HTTPSeconds.WithLabelValues(route, r.Method).Observe(d.Seconds())
		hlog.FromRequest(r).Info().
			Str("method", r.Method).
			Str("route", route).
			Int("status", status).
			Int("size", size).
			Float64("duration_ms", float64(d.Microseconds())/1000).
			Msg("request")
	})
	return func(next http.Handler) http.Handler {
		inner := access(next)
		withID := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l := zerolog.Ctx(r.Context()).With().Str("id", executionID(r.Context())).Logger()
			inner.ServeHTTP(w, r.WithContext(l.WithContext(r.Context())))
		})
		return hlog.NewHandler(log)(withID)
	}
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
