package api

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/playground"
)

// routes lists the whole API, one-to-one with openapi.yaml.
func routes(log zerolog.Logger, svc execution.Service, opts Options) http.Handler {
	r := chi.NewRouter()
	r.Use(withRequestID, accessLog(log, opts.Metrics, opts.Tracing), recoverer)
	r.NotFound(handle(func(w http.ResponseWriter, r *http.Request) error {
		return execution.NewProblem(execution.ProblemNotFound, "no route for "+r.URL.Path)
	}))
	r.MethodNotAllowed(handle(func(w http.ResponseWriter, r *http.Request) error {
		return execution.NewProblem(execution.ProblemMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	}))

	// keyed routes need a key that may run code (scope execute); each
	// takes the query parameters it names, and a request with any other
	// is refused, naming it.
	keyed := r.With(authenticate(opts.Keys, opts.Metrics, auth.ScopeExecute))
	keyed.With(query(), limitLifetime(opts.MaxLifetime)).Method(http.MethodPost, "/execute", handle(handleExecute(svc, opts)))
	m := newMCP(svc, opts)
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		keyed.Method(method, "/mcp", m)
	}
	keyed.With(query()).Method(http.MethodGet, "/capabilities", handle(handleCapabilities(svc)))
	if svc.Recording() {
		keyed.With(query()).Method(http.MethodPost, "/executions", handle(handleSubmit(svc, opts)))
		keyed.With(query("status", "limit", "cursor")).Method(http.MethodGet, "/executions", handle(handleList(svc)))
		keyed.With(query()).Method(http.MethodGet, "/executions/{id}", handle(handleGet(svc)))
		keyed.With(query()).Method(http.MethodDelete, "/executions/{id}", handle(handleCancel(svc)))
		keyed.With(query("after")).Method(http.MethodGet, "/executions/{id}/events", handle(handleEvents(svc, opts)))
		keyed.With(query()).Method(http.MethodGet, "/scripts", handle(handleListScripts(svc)))
		keyed.With(query()).Method(http.MethodPut, "/scripts/{name}", handle(handlePutScript(svc, opts)))
		keyed.With(query()).Method(http.MethodGet, "/scripts/{name}", handle(handleGetScript(svc)))
		keyed.With(query()).Method(http.MethodDelete, "/scripts/{name}", handle(handleDeleteScript(svc)))
		keyed.With(query()).Method(http.MethodGet, "/scripts/{name}/versions", handle(handleScriptVersions(svc)))
	}
	r.Method(http.MethodGet, "/healthz", handle(handleHealthz()))
	r.Method(http.MethodGet, "/readyz", handle(handleReadyz(svc, opts.Runtime)))
	r.Method(http.MethodGet, "/openapi.yaml", handle(handleOpenAPI(opts.OpenAPI)))
	page := playground.Handler(playground.Options{KeyRequired: func() bool { return opts.Keys.Len() > 0 }})
	r.Method(http.MethodGet, "/", http.RedirectHandler(playground.Path, http.StatusFound))
	r.Method(http.MethodGet, playground.Path, page)
	r.Method(http.MethodGet, playground.Path+"/app.js", page)
	r.Method(http.MethodGet, playground.Path+"/app.css", page)
	if opts.MetricsPublic {
		r.Method(http.MethodGet, "/metrics", opts.Metrics.Handler())
	} else {
		// Any key may read the metrics: a metrics key, or one that runs code.
		r.With(authenticate(opts.Keys, opts.Metrics, auth.ScopeMetrics)).Method(http.MethodGet, "/metrics", opts.Metrics.Handler())
	}
	return r
}

// handlerFunc is a handler that returns its error for handle to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: a returned error becomes a problem response.
func handle(h handlerFunc) http.HandlerFunc {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeProblem(w, r, err)
		}
	})
}

func handleHealthz() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		encode(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
		return nil
	}
}

func handleReadyz(svc execution.Service, runtime *RuntimeInfo) handlerFunc {
	type ready struct {
		Status string `json:"status"`
		*RuntimeInfo
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := svc.Ready(r.Context()); err != nil {
			return err
		}
		encode(w, http.StatusOK, "application/json", ready{"ready", runtime})
		return nil
	}
}

func handleOpenAPI(spec []byte) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/yaml")
		_, err := w.Write(spec)
		return err
	}
}

// handleCapabilities serves GET /capabilities: the capabilities the
// calling key may use, by name.
func handleCapabilities(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		encode(w, http.StatusOK, "application/json", svc.Capabilities(callerOf(r.Context())))
		return nil
	}
}

// query refuses a request with a query parameter other than allowed, 400
// unknown_parameter naming each: a client that guesses a parameter's name
// (?after= for ?cursor=) learns it is wrong instead of getting a default.
func query(allowed ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return handle(func(w http.ResponseWriter, r *http.Request) error {
			if r.URL.RawQuery == "" { // most requests: nothing to parse
				next.ServeHTTP(w, r)
				return nil
			}
			var unknown []FieldProblem
			for _, name := range slices.Sorted(maps.Keys(r.URL.Query())) {
				if !slices.Contains(allowed, name) {
					unknown = append(unknown, FieldProblem{Field: name, Code: execution.FieldUnknown,
						Detail: "unknown query parameter " + strconv.Quote(name)})
				}
			}
			if unknown == nil {
				next.ServeHTTP(w, r)
				return nil
			}
			takes := "takes no query parameters"
			if len(allowed) > 0 {
				takes = "takes only " + strings.Join(allowed, ", ")
			}
			names := make([]string, len(unknown))
			for i, u := range unknown {
				names[i] = strconv.Quote(u.Field)
			}
			p := execution.NewProblem(execution.ProblemUnknownParameter, "unknown query parameter "+strings.Join(names, ", ")+": "+r.Method+" "+chi.RouteContext(r.Context()).RoutePattern()+" "+takes)
			p.Errors = unknown
			return p
		})
	}
}
