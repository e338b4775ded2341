package api

import (
	"net/http"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/playground"
	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
)

// routes lists the whole API, one-to-one with openapi.yaml.
func routes(log zerolog.Logger, backend execution.Backend, opts Options) http.Handler {
	r := chi.NewRouter()
	r.Use(withExecutionID, accessLog(log, opts.Metrics), recoverer)
	r.NotFound(handle(func(w http.ResponseWriter, r *http.Request) error {
		return newProblem(http.StatusNotFound, execution.ProblemNotFound, "no route for "+r.URL.Path)
	}))
	r.MethodNotAllowed(handle(func(w http.ResponseWriter, r *http.Request) error {
		return newProblem(http.StatusMethodNotAllowed, execution.ProblemMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	}))

	m := opts.Metrics
	// One rate and one concurrency limiter for POST /execute and the MCP
	// execute tool: a key's quota counts executions, whichever way they come.
	rate, concurrency := rateLimit(opts.Quota, m), concurrencyLimit(m, opts.History)
	execute := handle(handleExecute(backend, opts))
	r.With(limitLifetime(opts.MaxLifetime), authenticate(opts.Keys, opts.Quota, m), rate, concurrency).
		Method(http.MethodPost, "/execute", execute)
	mcp := newMCP(opts, recoverer(limitLifetime(opts.MaxLifetime)(rate(concurrency(execute)))))
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		r.With(authenticate(opts.Keys, opts.Quota, m)).Method(method, "/mcp", mcp)
	}
	r.With(authenticate(opts.Keys, opts.Quota, m)).Method(http.MethodGet, "/capabilities", handle(handleCapabilities(opts.Capabilities)))
	if h := opts.History; h != nil {
		keyed := r.With(authenticate(opts.Keys, opts.Quota, m))
		keyed.With(rate).Method(http.MethodPost, "/executions", handle(handleSubmit(h, opts)))
		keyed.Method(http.MethodGet, "/executions", handle(h.limitReads(handleList(h))))
		keyed.Method(http.MethodGet, "/executions/{id}", handle(h.limitReads(handleGet(h))))
		keyed.Method(http.MethodDelete, "/executions/{id}", handle(handleCancel(h)))
		keyed.Method(http.MethodGet, "/executions/{id}/events", handle(handleEvents(h, opts)))
	}
	r.Method(http.MethodGet, "/healthz", handle(handleHealthz()))
	r.Method(http.MethodGet, "/readyz", handle(handleReadyz(backend, opts.History)))
	r.Method(http.MethodGet, "/openapi.yaml", handle(handleOpenAPI(opts.OpenAPI)))
	page := playground.Handler(playground.Options{KeyRequired: func() bool { return opts.Keys.Len() > 0 }})
	r.Method(http.MethodGet, "/", http.RedirectHandler(playground.Path, http.StatusFound))
	r.Method(http.MethodGet, playground.Path, page)
	r.Method(http.MethodGet, playground.Path+"/app.js", page)
	r.Method(http.MethodGet, playground.Path+"/app.css", page)
	if opts.MetricsPublic {
		r.Method(http.MethodGet, "/metrics", m.Handler())
	} else {
		r.With(authenticate(opts.Keys, opts.Quota, m)).Method(http.MethodGet, "/metrics", m.Handler())
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

func handleReadyz(backend execution.Backend, h *History) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := backend.Ready(r.Context()); err != nil {
			return err
		}
		if err := h.Ready(); err != nil {
			return err
		}
		encode(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
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
