package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// queueRetryAfter is the Retry-After of a full queue, in seconds.
const queueRetryAfter = 5

// handleSubmit serves POST /executions: it validates the request as POST
// /execute does, stores it queued under the request's id, and answers 202
// at once; a worker runs it later.
func handleSubmit(h *History, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		members, err := readJSONObject(w, r, opts.MaxRequestBytes)
		if err != nil {
			return err
		}
		callback, problem := h.callbackURL(members, callerOf(r.Context()).name)
		delete(members, "callbackUrl")
		job, problems := validateExecute(members, opts.Limits, opts.Now())
		problems = append(problems, grantCapabilities(members, job, opts.Capabilities, callerOf(r.Context()).name)...)
		if problem != nil {
			problems = append([]FieldProblem{*problem}, problems...)
		}
		if problems != nil {
			p := newProblem(http.StatusUnprocessableEntity, execution.ProblemInvalidRequest, summarize(problems))
			p.Errors = problems
			return p
		}
		if err := h.Ready(); err != nil {
			return err
		}
		body, err := json.Marshal(members)
		if err != nil {
			return err
		}
		id := executionID(r.Context())
		err = h.store.Enqueue(r.Context(), &store.Execution{
			ID: id, Caller: callerOf(r.Context()).name, Status: store.Queued, Async: true,
			Outbound: job.SideEffects(), Retry: job.Retry, Request: body, CallbackURL: callback, CreatedAt: time.Now(),
		}, h.queueBounds(callerOf(r.Context())))
		if err != nil {
			return queueProblem(err)
		}
		h.signal()
		w.Header().Set("Location", "/executions/"+id)
		encode(w, http.StatusAccepted, mediaJSON, execution.Accepted{ID: id, Status: execution.StatusQueued})
		return nil
	}
}

// queueBounds are the bounds of c's submission: the queue's and c's own.
func (h *History) queueBounds(c caller) store.Bounds {
	per := h.opts.MaxQueuedPerKey
	if c.maxQueued > 0 {
		per = c.maxQueued
	}
	return store.Bounds{Total: h.opts.MaxQueued, PerCaller: per}
}

// queueProblem is the answer to a refused submission: 503 queue_full when
// the queue is full, 429 queue_limited when the key has its bound queued
// (its own doing, like its other quotas), both with Retry-After.
func queueProblem(err error) error {
	var p *Problem
	switch {
	case errors.Is(err, store.ErrQueueFull):
		p = newProblem(http.StatusServiceUnavailable, execution.ProblemQueueFull,
			"the queue of executions is full; retry after Retry-After seconds")
	case errors.Is(err, store.ErrCallerQueueFull):
		p = newProblem(http.StatusTooManyRequests, execution.ProblemQueueLimited,
			"this API key has its bound of executions queued; retry after Retry-After seconds, or when one has started")
	default:
		return err
	}
	p.retryAfter = queueRetryAfter
	return p
}

// callbackURL reads the optional callbackUrl: an absolute http or https
// URL that obeys the egress rules (webhook.ValidateCallbackURL; other
// addresses than public ones only as Webhook.Reach allows), for a caller
// that has a callback secret to sign it with.
func (h *History) callbackURL(members map[string]json.RawMessage, caller string) (string, *FieldProblem) {
	raw, ok := members["callbackUrl"]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &FieldProblem{Field: "callbackUrl", Code: fieldWrongType, Detail: "callbackUrl must be a string"}
	}
	cb := h.opts.Callbacks
	if err := webhook.ValidateCallbackURL(s, cb.Webhook.Reach); err != nil {
		return "", &FieldProblem{Field: "callbackUrl", Code: fieldInvalid, Detail: "callbackUrl: " + err.Error()}
	}
	if len(cb.secretFor(caller)) == 0 {
		return "", &FieldProblem{Field: "callbackUrl", Code: fieldInvalid,
			Detail: "callbackUrl needs a callback secret to sign with, and none is configured for this API key (callbacks.secret or auth.keys.<name>.callback_secret)"}
	}
	return s, nil
}

// handleGet serves GET /executions/{id}: the caller's own record, its
// result as stored (spliced in, not decoded and encoded again).
func handleGet(h *History) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := chi.URLParam(r, "id")
		e, err := h.store.Get(r.Context(), callerOf(r.Context()).name, id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound(id)
		}
		if err != nil {
			return err
		}
		body, err := renderRecord(e)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", mediaJSON)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, err = w.Write(body)
		return err
	}
}

// lookup finds the caller's record named by the route's id, without its
// result: another caller's record is as unknown as one that never was.
func (h *History) lookup(r *http.Request) (*store.Execution, error) {
	id := chi.URLParam(r, "id")
	e, err := h.store.Head(r.Context(), callerOf(r.Context()).name, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(id)
	}
	return e, err
}

func notFound(id string) error {
	return newProblem(http.StatusNotFound, execution.ProblemNotFound, "no execution "+strconvQuote(id))
}

// handleList serves GET /executions: the caller's records, newest first.
func handleList(h *History) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, problems := listQuery(r.URL.Query())
		if problems != nil {
			p := newProblem(http.StatusUnprocessableEntity, execution.ProblemInvalidRequest, summarize(problems))
			p.Errors = problems
			return p
		}
		page, err := h.store.List(r.Context(), callerOf(r.Context()).name, q)
		if errors.Is(err, store.ErrBadCursor) {
			p := newProblem(http.StatusUnprocessableEntity, execution.ProblemInvalidRequest, "cursor is not one this API returned")
			p.Errors = []FieldProblem{{Field: "cursor", Code: fieldInvalid, Detail: "cursor is not one this API returned"}}
			return p
		}
		if err != nil {
			return err
		}
		out := execution.RecordList{Executions: make([]execution.Record, 0, len(page.Executions)), Next: page.Next}
		for _, e := range page.Executions {
			out.Executions = append(out.Executions, recordOf(e, false))
		}
		encode(w, http.StatusOK, mediaJSON, out)
		return nil
	}
}

// listQuery reads GET /executions' status, limit and cursor.
func listQuery(v url.Values) (store.Query, []FieldProblem) {
	var q store.Query
	var problems []FieldProblem
	if s := v.Get("status"); s != "" {
		q.Status = store.Status(s)
		if !q.Status.Valid() {
			problems = append(problems, FieldProblem{Field: "status", Code: fieldInvalid,
				Detail: "status must be queued, running, finished or cancelled"})
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			problems = append(problems, FieldProblem{Field: "limit", Code: fieldInvalid, Detail: "limit must be an integer from 1 to 100"})
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	return q, problems
}

// handleCancel serves DELETE /executions/{id}: a queued execution is
// cancelled at once (200), a running one is asked to stop (202; its record
// turns cancelled when it has). A synchronous one ends with its request.
func handleCancel(h *History) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		e, err := h.lookup(r)
		if err != nil {
			return err
		}
		if !e.Async && !e.Status.Final() {
			return newProblem(http.StatusConflict, execution.ProblemNotCancellable,
				"a synchronous execution is cancelled by closing its request")
		}
		e, err = h.store.Cancel(r.Context(), e.Caller, e.ID, time.Now())
		if errors.Is(err, store.ErrFinal) {
			return newProblem(http.StatusConflict, execution.ProblemNotCancellable, "the execution has ended")
		}
		if err != nil {
			return err
		}
		status := http.StatusOK
		if e.Status == store.Running {
			status = http.StatusAccepted
			h.cancelLocal(e.ID, errCancelled)
		} else {
			h.broker.notify(e.ID)
			h.ended(e)
		}
		body, err := renderRecord(e)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", mediaJSON)
		w.WriteHeader(status)
		_, err = w.Write(body)
		return err
	}
}

// renderRecord is e as GET /executions/{id} and a callback send it, JSON
// ending with a newline: its result is the one it holds in memory, or the
// stored JSON spliced in as it is (a result may be megabytes: decoding and
// encoding it again cost seconds and a multiple of its size).
func renderRecord(e *store.Execution) ([]byte, error) {
	rec := recordOf(e, true)
	body, err := marshal(rec)
	if err != nil || rec.Result != nil || e.Status != store.Finished || len(e.ResultJSON) == 0 {
		return body, err
	}
	// body is {...}\n: the result goes in before the closing brace.
	head := bytes.TrimSuffix(bytes.TrimSpace(body), []byte("}"))
	out := make([]byte, 0, len(head)+len(e.ResultJSON)+12)
	out = append(out, head...)
	out = append(out, `,"result":`...)
	out = append(out, e.ResultJSON...)
	return append(out, "}\n"...), nil
}

// recordOf renders a record; list pages leave the result out.
func recordOf(e *store.Execution, withResult bool) execution.Record {
	rec := execution.Record{ID: e.ID, Status: string(e.Status), Async: e.Async, CallbackURL: e.CallbackURL, CreatedAt: e.CreatedAt}
	if !e.StartedAt.IsZero() {
		rec.StartedAt = &e.StartedAt
	}
	if !e.FinishedAt.IsZero() {
		rec.FinishedAt = &e.FinishedAt
	}
	if withResult && e.Status == store.Finished {
		rec.Result = e.Result
	}
	rec.Callback = callbackOf(e)
	return rec
}
