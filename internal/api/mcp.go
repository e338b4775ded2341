package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/mcp"
)

// mcpHeadroom is how much larger than an execution request an MCP message
// may be: the JSON-RPC envelope around the tool's arguments.
const mcpHeadroom = 64 << 10

// newMCP returns the /mcp handler; it offers list_capabilities when the
// gateway has capabilities. Its execute tool runs each call through
// execute, the handler of POST /execute behind its rate and concurrency
// limits, in process: an MCP execution is validated, limited, counted and
// answered exactly as one posted to /execute, and only executions count
// against a key's quota (not initialize, tools/list or a session's stream).
func newMCP(opts Options, execute http.Handler) http.Handler {
	var list func(*http.Request) execution.CapabilityList
	if len(opts.Capabilities) > 0 {
		list = func(r *http.Request) execution.CapabilityList {
			return opts.Capabilities.list(callerOf(r.Context()).name)
		}
	}
	return mcp.New(mcp.Options{
		Execute:         runInProcess(execute),
		Caller:          func(r *http.Request) string { return callerOf(r.Context()).name },
		MaxRequestBytes: opts.MaxRequestBytes + mcpHeadroom,
		KeysRequired:    opts.Keys.Len() > 0,
		Capabilities:    list,
		Version:         opts.Version,
		TooManySessions: handle(func(http.ResponseWriter, *http.Request) error {
			p := newProblem(http.StatusTooManyRequests, execution.ProblemRateLimited,
				"this API key has the most MCP sessions open it may have; close one (DELETE /mcp) or let an idle one expire")
			p.retryAfter = 60
			return p
		}),
	})
}

// runInProcess serves an execution request to h as a POST /execute, in
// the context of the MCP request that carried it (its caller and logger; it
// ends when that client goes away or the call is cancelled), and takes the
// events as the handler makes them (eventWriter is an eventConsumer: no
// encoding, no outbox). Each execution gets an id of its own: one MCP
// request may carry several calls (a JSON-RPC batch), and executions
// sharing an id would share their records and audit.
func runInProcess(h http.Handler) mcp.Runner {
	return func(ctx context.Context, r *http.Request, args json.RawMessage, log func(execution.Log)) (mcp.Outcome, error) {
		id := newID()
		logger := zerolog.Ctx(r.Context()).With().Str("execution_id", id).Logger()
		run, cancel := context.WithCancel(logger.WithContext(context.WithValue(r.Context(), idKey, id)))
		defer cancel()
		defer context.AfterFunc(ctx, cancel)()
		req, err := http.NewRequestWithContext(run, http.MethodPost, "/execute", bytes.NewReader(args))
		if err != nil {
			return mcp.Outcome{}, err
		}
		req.Header.Set("Content-Type", mediaJSON)
		req.Header.Set("Accept", mediaNDJSON)
		req.RemoteAddr = r.RemoteAddr
		w := &eventWriter{header: http.Header{}, log: log}
		h.ServeHTTP(w, req)
		return w.outcome()
	}
}

// eventWriter is the http.ResponseWriter of an in-process execution: it
// takes the events (consume), hands each log line on, and keeps the result;
// any other answer (a problem) it keeps whole. An NDJSON stream written to
// it, should a sink not see it as a consumer, is read into events as it is
// written.
type eventWriter struct {
	header http.Header
	log    func(execution.Log) // never waits for the MCP client

	mu     sync.Mutex
	status int
	buf    []byte // an unfinished line, or a problem's body
	logs   []execution.Log
	result *execution.Result
	done   bool // the handler returned: later events are dropped
	err    error
}

func (w *eventWriter) Header() http.Header { return w.header }
func (w *eventWriter) Flush()              {}

func (w *eventWriter) WriteHeader(status int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		w.status = status
	}
}

// errCallerGone refuses events after the in-process call has returned.
var errCallerGone = errors.New("the execution's caller is gone")

// consume takes one event of the execution.
func (w *eventWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = errors.Join(w.err, err)
}

func (w *eventWriter) consume(ev execution.Event) error {
	w.WriteHeader(http.StatusOK)
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return errCallerGone
	}
	var line *execution.Log
	switch ev.Type {
	case execution.EventLog:
		w.logs = append(w.logs, *ev.Log)
		line = ev.Log
	case execution.EventRestart:
		w.logs = w.logs[:0] // the execution runs again
	case execution.EventResult:
		res := *ev.Result
		res.Logs = append([]execution.Log{}, w.logs...)
		w.result = &res
	}
	w.mu.Unlock()
	if line != nil {
		w.log(*line)
	}
	return nil
}

func (w *eventWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return 0, errCallerGone
	}
	w.buf = append(w.buf, p...)
	var events []execution.Event
	for w.status == http.StatusOK {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		var ev execution.Event
		if err := json.Unmarshal(w.buf[:i], &ev); err != nil {
			w.err = errors.Join(w.err, err)
		} else {
			events = append(events, ev)
		}
		w.buf = w.buf[i+1:]
	}
	w.mu.Unlock()
	for _, ev := range events {
		if err := w.consume(ev); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// outcome is what the handler answered; it ends the writer.
func (w *eventWriter) outcome() (mcp.Outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	switch {
	case w.status != http.StatusOK && w.status != 0:
		return mcp.Outcome{Problem: json.RawMessage(w.buf), Status: w.status, RetryAfter: w.header.Get("Retry-After")}, nil
	case w.err != nil:
		return mcp.Outcome{}, w.err
	case w.result == nil:
		return mcp.Outcome{}, errors.New("the execution ended without a result: its client went away or cancelled it")
	}
	return mcp.Outcome{Result: w.result}, nil
}
