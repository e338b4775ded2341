package executions

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/tracing"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// queueRetryAfter is the Retry-After of a full queue, in seconds.
const queueRetryAfter = 5

// Submit validates req and queues it (execution.Service).
func (s *Service) Submit(ctx context.Context, c execution.Caller, req execution.RunRequest) (execution.Accepted, error) {
	if s.store == nil {
		return execution.Accepted{}, execution.NewProblem(execution.ProblemNotFound, "executions are not recorded here, so none can be queued")
	}
	actx, admission := s.span(ctx, "admission", req.ID, c.Name)
	acc, err := s.enqueue(actx, tracing.Traceparent(ctx), c, req)
	endSpan(admission, err)
	return acc, err
}

// enqueue admits and queues a submission of c's; its spans will continue
// the trace traceparent names.
func (s *Service) enqueue(ctx context.Context, traceparent string, c execution.Caller, req execution.RunRequest) (execution.Accepted, error) {
	if err := s.refuseStopping(); err != nil {
		return execution.Accepted{}, err
	}
	if err := s.limiter.start(ctx, c, time.Now()); err != nil {
		return execution.Accepted{}, s.limited(ctx, c, "rate", err)
	}
	body := make(map[string]json.RawMessage, len(req.Body))
	for k, v := range req.Body {
		body[k] = v
	}
	callback, problem := s.callbackURL(body, c.Name)
	delete(body, "callbackUrl")
	job, invalid := s.prepare(ctx, c.Name, body)
	if invalid != nil && invalid.Code != execution.ProblemInvalidRequest {
		return execution.Accepted{}, invalid // a script not found, a dependency refused
	}
	if problem != nil || invalid != nil {
		var problems []execution.FieldProblem
		if problem != nil {
			problems = append(problems, *problem)
		}
		if invalid != nil {
			problems = append(problems, invalid.Errors...)
		}
		return execution.Accepted{}, execution.InvalidRequest(problems)
	}
	if job.Script != "" {
		body["script"], _ = json.Marshal(job.Script) // the version it names now runs
	}
	// Its dependencies are resolved now: a refusal is this answer's, and
	// the run finds the set in the cache.
	if _, err := s.resolve(ctx, job); err != nil {
		return execution.Accepted{}, err
	}
	if err := s.writer.Ready(); err != nil {
		return execution.Accepted{}, err
	}
	stored, err := json.Marshal(body)
	if err != nil {
		return execution.Accepted{}, err
	}
	err = s.store.Enqueue(ctx, &store.Execution{
		ID: req.ID, Caller: c.Name, Status: store.Queued, Async: true,
		Outbound: job.SideEffects(), Retry: job.Retry, Request: stored, CallbackURL: callback, CreatedAt: time.Now(),
		Trace: traceparent,
	}, s.queueBounds(c))
	if err != nil {
		return execution.Accepted{}, queueProblem(err)
	}
	s.queue.signal()
	return execution.Accepted{ID: req.ID, Status: execution.StatusQueued}, nil
}

// queueBounds are the bounds of c's submission: the queue's and c's own.
func (s *Service) queueBounds(c execution.Caller) store.Bounds {
	per := s.opts.Records.MaxQueuedPerKey
	if c.MaxQueued > 0 {
		per = c.MaxQueued
	}
	return store.Bounds{Total: s.opts.Records.MaxQueued, PerCaller: per}
}

// queueProblem is the answer to a refused submission: queue_full when the
// queue is full, queue_limited when the key has its bound queued (its own
// doing, like its other quotas), both with Retry-After.
func queueProblem(err error) error {
	switch {
	case errors.Is(err, store.ErrQueueFull):
		return execution.NewProblem(execution.ProblemQueueFull,
			"the queue of executions is full; retry after Retry-After seconds").WithRetryAfter(queueRetryAfter)
	case errors.Is(err, store.ErrCallerQueueFull):
		return execution.NewProblem(execution.ProblemQueueLimited,
			"this API key has its bound of executions queued; retry after Retry-After seconds, or when one has started").WithRetryAfter(queueRetryAfter)
	}
	return err
}

// callbackURL reads the optional callbackUrl: an absolute http or https
// URL that obeys the egress rules (webhook.ValidateCallbackURL; private and
// loopback hosts only with Webhook.Reach's allowances), for a caller that
// has a callback secret to sign it with.
func (s *Service) callbackURL(members map[string]json.RawMessage, caller string) (string, *execution.FieldProblem) {
	raw, ok := members["callbackUrl"]
	if !ok {
		return "", nil
	}
	var u string
	if err := json.Unmarshal(raw, &u); err != nil {
		return "", &execution.FieldProblem{Field: "callbackUrl", Code: fieldWrongType, Detail: "callbackUrl must be a string"}
	}
	cb := s.opts.Records.Callbacks
	if err := webhook.ValidateCallbackURL(u, cb.Webhook.Reach); err != nil {
		return "", &execution.FieldProblem{Field: "callbackUrl", Code: fieldInvalid, Detail: "callbackUrl: " + err.Error()}
	}
	if len(cb.secretFor(caller)) == 0 {
		return "", &execution.FieldProblem{Field: "callbackUrl", Code: fieldInvalid,
			Detail: "callbackUrl needs a callback secret to sign with, and none is configured for this API key (callbacks.secret or auth.keys.<name>.callback_secret)"}
	}
	return u, nil
}

// queue is this gateway's workers: each claims a queued execution (the
// oldest among the keys with the fewest running, under their concurrency
// quotas) and runs it, one at a time, until the service is drained.
type queue struct {
	s       *Service
	wake    chan struct{} // a submission: a worker should look now
	claimMu sync.RWMutex  // held shared while claiming
	closed  bool          // drained: no more claims
	cancel  context.CancelCauseFunc
	workers sync.WaitGroup
	closeMu sync.Mutex
	done    bool // close has run
}

func newQueue(s *Service) *queue { return &queue{s: s, wake: make(chan struct{}, 1)} }

// start starts the workers.
func (q *queue) start() {
	ctx, cancel := context.WithCancelCause(context.Background())
	q.cancel = cancel
	for range q.s.opts.Records.Workers {
		q.workers.Go(func() { q.work(ctx) })
	}
}

// signal wakes a worker.
func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drain stops claiming; the executions running go on.
func (q *queue) drain() {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	q.closed = true
}

// close drains, and waits until no queued execution runs here or ctx
// ends; false if it had run before.
func (q *queue) close(ctx context.Context) bool {
	q.drain()
	q.closeMu.Lock()
	defer q.closeMu.Unlock()
	if q.done {
		return false
	}
	q.done = true
	idle := make(chan struct{})
	go func() {
		for q.s.running.busy() {
			time.Sleep(20 * time.Millisecond)
		}
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
	}
	return true
}

// wait stops the workers (what they run has been cancelled) and waits for
// them.
func (q *queue) wait() {
	q.cancel(errShutdown)
	q.workers.Wait()
}

// work claims queued executions and runs them, one at a time, until ctx
// ends or the queue is drained.
func (q *queue) work(ctx context.Context) {
	poll := time.NewTicker(q.s.opts.Records.Poll)
	defer poll.Stop()
	for ctx.Err() == nil {
		e, err := q.claim(ctx)
		if err == nil {
			q.s.runQueued(ctx, e)
			continue
		}
		if !errors.Is(err, store.ErrEmpty) && ctx.Err() == nil {
			q.s.log.Error().Err(err).Msg("storage: claiming a queued execution failed")
		}
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-poll.C:
		}
	}
}

// claim takes the next queued execution of a key under its concurrency
// quota, unless the queue is drained.
func (q *queue) claim(ctx context.Context) (*store.Execution, error) {
	q.claimMu.RLock()
	defer q.claimMu.RUnlock()
	if q.closed {
		return nil, store.ErrEmpty
	}
	return q.s.store.Claim(ctx, q.s.owner, time.Now(), q.s.claimLimits())
}

// claimLimits are the keys' concurrency quotas as the store's claim
// limits: each key's own, else the default.
func (s *Service) claimLimits() store.Limits {
	lim := store.Limits{Default: s.opts.Quota.Concurrency, Callers: map[string]int{}, Busy: s.limiter.busy()}
	if s.opts.Callers != nil {
		for _, c := range s.opts.Callers() {
			if c.Concurrency > 0 {
				lim.Callers[c.Name] = c.Concurrency
			}
		}
	}
	return lim
}

// runQueued runs one claimed execution as Run runs one, its events going
// to its record only.
func (s *Service) runQueued(ctx context.Context, e *store.Execution) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.running.add(e.ID, e.Caller, e.Retry, cancel)
	defer s.running.remove(e.ID, e.Caller)
	lc := s.log.With().Str("execution_id", e.ID).Str("key", e.Caller)
	if id := tracing.TraceID(e.Trace); id != "" {
		lc = lc.Str("trace_id", id)
	}
	log := lc.Logger()
	ctx = tracing.Continue(ctx, e.Trace)
	if e.Attempts == 1 {
		// Its first claim: the wait since its submission.
		s.m.QueueWait.Observe(time.Since(e.CreatedAt).Seconds())
		s.queueWait(ctx, e.ID, e.Caller, e.CreatedAt)
	}

	rec := s.recordQueued(e)
	defer rec.end()
	job, res := s.prepareQueued(e)
	if res != nil {
		_ = rec.event(execution.Event{Type: execution.EventStart, ID: e.ID})
		_ = rec.event(execution.Event{Type: execution.EventResult, Result: res})
		return
	}
	col := newCollector(job, s.opts.Limits.MaxLogLineBytes, s.opts.Limits.MaxLogBytes)
	if e.LastEvent > 0 {
		// A run again after its gateway died or handed it back: what the
		// earlier runs did is in its stored events.
		earlier, err := s.storedEvents(ctx, e.ID, e.LastEvent)
		if err != nil {
			log.Error().Err(err).Msg("reading the earlier runs' events failed; the result lists this run's calls only")
		}
		col.resume(earlier)
	}
	back := false
	final, err := s.execute(ctx, job, col, s.handBack(e.ID, rec.event, &back), true)
	if cause := context.Cause(ctx); back || final == nil && ctx.Err() != nil {
		switch {
		case back:
			cause = errHandoff
		case cause == errHandoff && !s.running.mayRunAgain(e.ID):
			cause = errShutdown // left running, for the recovery to decide
		}
		rec.stopped = cause
		log.Info().Err(cause).Msg("queued execution stopped")
		return
	}
	if final == nil {
		log.Error().Err(err).Msg("queued execution failed")
		return
	}
	s.finished(&log, job, col, final)
}

// prepareQueued turns a queued record back into a job, validated again as
// Run validates (the limits, and the capabilities its caller's key may
// use, may have changed since it was queued), and only while the key that
// queued it is configured and not revoked. A request no longer valid ends
// as a failed result.
func (s *Service) prepareQueued(e *store.Execution) (*execution.Job, *execution.Result) {
	failed := func(code execution.Code, msg string) *execution.Result {
		return &execution.Result{ID: e.ID, Outbound: []execution.Outgoing{}, Logs: []execution.Log{}, Error: &execution.Error{Code: code, Message: msg}}
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(e.Request, &members); err != nil {
		return nil, failed(execution.CodeRuntimeCrashed, "the stored request is unreadable")
	}
	job, problem := s.prepare(context.Background(), e.Caller, members)
	var problems []execution.FieldProblem
	if problem != nil && problem.Code != execution.ProblemInvalidRequest {
		return nil, failed(execution.CodeInvalidModule, "the request can no longer run: "+problem.Detail)
	}
	if problem != nil {
		problems = problem.Errors
	}
	if s.opts.Keys != nil {
		if _, ok := s.opts.Keys(e.Caller); !ok {
			problems = append(problems, execution.FieldProblem{Field: "caller", Code: fieldInvalid,
				Detail: "the API key that queued it is revoked or no longer configured"})
		}
	}
	if problems != nil {
		return nil, failed(execution.CodeInvalidModule, "the request is no longer valid: "+execution.InvalidRequest(problems).Detail)
	}
	job.ID = e.ID
	return job, nil
}

// storedEvents reads the outbound and restart events of execution id up to
// event last.
func (s *Service) storedEvents(ctx context.Context, id string, last int64) ([]execution.Event, error) {
	var out []execution.Event
	for after := int64(0); after < last; {
		page, err := s.store.Events(ctx, id, after, eventsPage)
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
