package api

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// runner is what a worker runs queued executions with: the backend and
// the API's options, as POST /execute has them.
type runner struct {
	backend execution.Backend
	opts    Options
	log     zerolog.Logger
	// limits are the keys' concurrency quotas, which claims obey.
	limits store.Limits
}

// work claims queued executions and runs them, one at a time, until ctx
// ends or the History is drained.
func (h *History) work(ctx context.Context, run *runner) {
	poll := time.NewTicker(h.opts.Poll)
	defer poll.Stop()
	for ctx.Err() == nil {
		e, err := h.claim(ctx, run.limits)
		if err == nil {
			h.runQueued(ctx, run, e)
			continue
		}
		if !errors.Is(err, store.ErrEmpty) && ctx.Err() == nil {
			h.log.Error().Err(err).Msg("storage: claiming a queued execution failed")
		}
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-poll.C:
		}
	}
}

// claim takes the next queued execution of a key under its concurrency
// quota, unless the History is drained.
func (h *History) claim(ctx context.Context, lim store.Limits) (*store.Execution, error) {
	h.claimMu.RLock()
	defer h.claimMu.RUnlock()
	if h.closed {
		return nil, store.ErrEmpty
	}
	return h.store.Claim(ctx, h.owner, time.Now(), lim)
}

// runQueued runs one claimed execution like POST /execute runs one, its
// events going to the record only.
func (h *History) runQueued(ctx context.Context, run *runner, e *store.Execution) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h.track(e.ID, e.Caller, cancel)
	defer h.untrack(e.ID, e.Caller)
	log := run.log.With().Str("execution_id", e.ID).Str("key", e.Caller).Logger()

	rec := &recorder{sink: discard{}, h: h, id: e.ID, record: e, created: true, seq: e.LastEvent, skipNext: e.LastEvent > 0}
	defer rec.close()
	job, res := prepare(run.opts, e)
	if res != nil {
		_ = rec.event(execution.Event{Type: execution.EventStart, ID: e.ID})
		_ = rec.event(execution.Event{Type: execution.EventResult, Result: res})
		return
	}
	col := newCollector(job, run.opts.Limits.MaxLogLineBytes, run.opts.Limits.MaxLogBytes)
	if e.LastEvent > 0 {
		// A run again after its gateway died: what the earlier runs did
		// is in its stored events.
		earlier, err := h.storedEvents(ctx, e.ID, e.LastEvent)
		if err != nil {
			log.Error().Err(err).Msg("reading the earlier runs' events failed; the result lists this run's calls only")
		}
		col.resume(earlier)
	}
	ts, syntax, err := transpileWaiting(ctx, job)
	if ctx.Err() != nil {
		rec.stopped = context.Cause(ctx)
		return
	}
	if err != nil || syntax != nil {
		if syntax == nil {
			syntax = &execution.Result{Error: &execution.Error{Code: execution.CodeRuntimeCrashed, Message: "the gateway could not prepare the execution"}}
			log.Error().Err(err).Msg("preparing a queued execution failed")
		}
		col.result(syntax)
		_ = rec.event(execution.Event{Type: execution.EventStart, ID: e.ID})
		_ = rec.event(execution.Event{Type: execution.EventResult, Result: syntax})
		return
	}
	col.ts = ts
	final, err := h.execute(ctx, run, job, col, rec)
	if cause := context.Cause(ctx); final == nil && ctx.Err() != nil {
		rec.stopped = cause
		log.Info().Err(cause).Msg("queued execution stopped")
		return
	}
	if final == nil {
		if err == nil {
			err = errors.New("backend ended the execution without a result")
		}
		log.Error().Err(err).Msg("queued execution failed")
		res := &execution.Result{Error: &execution.Error{Code: execution.CodeRuntimeCrashed, Message: "the gateway lost the execution"}}
		col.result(res)
		_ = rec.event(execution.Event{Type: execution.EventResult, Result: res})
		return
	}
	audit(&log, job, codeHash(job), final, col.lines)
	observe(run.opts.Metrics, final, col.bytes)
}

// storedEvents reads the outbound and restart events of execution id up to
// event last.
func (h *History) storedEvents(ctx context.Context, id string, last int64) ([]execution.Event, error) {
	var out []execution.Event
	for after := int64(0); after < last; {
		page, err := h.store.Events(ctx, id, after, eventsPage)
		if err != nil || len(page) == 0 {
			return out, err
		}
		for _, stored := range page {
			if stored.Seq > last {
				return out, nil
			}
			after = stored.Seq
			if stored.Type != execution.EventOutbound && stored.Type != execution.EventRestart {
				continue
			}
			var ev execution.Event
			if err := json.Unmarshal(stored.Data, &ev); err != nil {
				return out, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// transpileWaiting is transpileIfNeeded, waiting (with backoff) while the
// transpiler is busy rather than failing: a queued execution can wait.
func transpileWaiting(ctx context.Context, job *execution.Job) (*transpile.Output, *execution.Result, error) {
	wait := backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: true}
	for attempt := 0; ; attempt++ {
		ts, syntax, err := transpileIfNeeded(job)
		if !errors.Is(err, execution.ErrUnavailable) {
			return ts, syntax, err
		}
		if err := wait.Wait(ctx, attempt); err != nil {
			return nil, nil, err
		}
	}
}

// execute runs job on the backend, waiting (with backoff) while no runtime
// can take it, and passes its events through col to rec.
func (h *History) execute(ctx context.Context, run *runner, job *execution.Job, col *collector, rec *recorder) (*execution.Result, error) {
	var final *execution.Result
	m := run.opts.Metrics
	m.InFlight.Inc()
	defer m.InFlight.Dec()
	wait := backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: true}
	for attempt := 0; ; attempt++ {
		err := run.backend.Execute(ctx, job, col.passOn(m, time.Now(), &final, rec.event))
		var rejected *execution.RejectedError
		switch {
		case errors.As(err, &rejected):
			res := &execution.Result{Error: &execution.Error{Code: execution.CodeInvalidModule, Message: rejected.Error()}}
			col.result(res)
			_ = rec.event(execution.Event{Type: execution.EventResult, Result: res})
			return res, nil
		case errors.Is(err, execution.ErrUnavailable) && final == nil:
			if err := wait.Wait(ctx, attempt); err != nil {
				return nil, err
			}
			continue // no runtime was free: the execution waits in line
		}
		return final, err
	}
}

// prepare turns a queued record back into a job, validated again as
// POST /execute validates (the limits, and the capabilities its caller's
// key may use, may have changed since it was queued), and only while the
// key that queued it is configured and not revoked. A request no longer valid ends as a failed result.
func prepare(opts Options, e *store.Execution) (*execution.Job, *execution.Result) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(e.Request, &members); err != nil {
		return nil, &execution.Result{ID: e.ID, Outbound: []execution.Outgoing{}, Logs: []execution.Log{},
			Error: &execution.Error{Code: execution.CodeRuntimeCrashed, Message: "the stored request is unreadable"}}
	}
	job, problems := validateExecute(members, opts.Limits, opts.Now())
	problems = append(problems, grantCapabilities(members, job, opts.Capabilities, e.Caller)...)
	if opts.Keys.Len() > 0 && !opts.Keys.Active(e.Caller) {
		problems = append(problems, FieldProblem{Field: "caller", Code: fieldInvalid,
			Detail: "the API key that queued it is revoked or no longer configured"})
	}
	if problems != nil {
		return nil, &execution.Result{ID: e.ID, Outbound: []execution.Outgoing{}, Logs: []execution.Log{},
			Error: &execution.Error{Code: execution.CodeInvalidModule, Message: "the request is no longer valid: " + summarize(problems)}}
	}
	job.ID = e.ID
	job.Caller = e.Caller
	if job.ReuseKey != "" {
		job.ReuseKey = reuseKey(job.Caller, job)
	}
	return job, nil
}

// discard is the sink of a queued execution: nobody waits on the request.
type discard struct{}

func (discard) event(execution.Event) error { return nil }
func (discard) started() bool               { return true }
func (discard) close()                      {}
func (discard) abort(error)                 {}

// concurrencyLimits are the keys' concurrency quotas as the store's claim
// limits: each key's own, else the default.
func concurrencyLimits(opts Options) store.Limits {
	lim := store.Limits{Default: opts.Quota.Concurrency, Callers: map[string]int{}}
	for _, k := range opts.Keys.All() {
		if k.Concurrency > 0 {
			lim.Callers[k.Name] = k.Concurrency
		}
	}
	return lim
}
