package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// write is one pending change to the store: a new record, events of a
// record, or its end, or a new record with its events and maybe its end. The writer applies them in order, so a record's
// events are stored before its final status.
type write struct {
	create *store.Execution
	id     string
	caller string // whose record it is: its bytes count against their bound
	events []store.Event
	end    *ending
	done   chan struct{} // closed once applied (for tests and Close)
	// stored, if set, gets the outcome once the write has been applied or
	// has failed (it then waits in the backlog, to be tried again): a
	// synchronous execution's answer waits for its record.
	stored chan error
}

// ending is how an execution ended.
type ending struct {
	owner  string
	status store.Status
	result *execution.Result
	// resultJSON is result as the client got it, if the answer was one
	// JSON result: stored as it is, not encoded again.
	resultJSON []byte
	last       []store.Event // stored with the end: the result event
	// record is the execution's record as it was created or claimed; with
	// the end applied, it is what the Finished hook gets.
	record *store.Execution
	at     time.Time // when it ended
}

// enqueue hands w to the writer; it waits only when the writer is far
// behind (the queue is full), and drops w once Close has stopped it.
func (h *History) enqueue(w write) {
	select {
	case h.writes <- w:
	case <-h.stop:
	}
}

// writer applies the pending writes until Close, then what is left.
// Consecutive events of one record become one insert. While the store
// refuses writes, it tries the refused ones again every retryEvery.
func (h *History) writer() {
	defer close(h.written)
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for {
		select {
		case w := <-h.writes:
			h.apply(h.batch(w))
		case <-tick.C:
			if h.Ready() != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				h.retry(ctx)
				cancel()
			}
		case <-h.stop:
			for {
				select {
				case w := <-h.writes:
					h.apply(h.batch(w))
				default:
					return
				}
			}
		}
	}
}

// batch merges into w the events of the same record queued right behind
// it, and the writes that come within batchLinger after it, and returns the
// writes to apply: one transaction per batch, not per write, which under
// load was most of the writer's cost (a commit each). A write someone waits
// for (stored) ends the lingering: the batch is what is queued by then.
func (h *History) batch(w write) []write {
	out := []write{w}
	urgent := w.stored != nil
	linger := time.NewTimer(batchLinger)
	defer linger.Stop()
	for len(out) < 256 {
		var next write
		if urgent {
			select {
			case next = <-h.writes:
			default:
				return out
			}
		} else {
			select {
			case next = <-h.writes:
			case <-linger.C:
				return out
			case <-h.stop:
				return out
			}
		}
		urgent = urgent || next.stored != nil
		last := &out[len(out)-1]
		if next.create == nil && next.end == nil && next.done == nil && next.stored == nil &&
			last.create == nil && last.end == nil && last.done == nil && last.stored == nil && last.id == next.id {
			last.events = append(last.events, next.events...)
			continue
		}
		out = append(out, next)
	}
	return out
}

// batchLinger is how long the writer waits for more writes before it
// applies a batch that no one waits for.
const batchLinger = 10 * time.Millisecond

// apply stores a batch of writes in one transaction; if that fails, one by
// one, so that one bad write loses only itself. Then it keeps the keys
// whose records grew under their storage bound.
func (h *History) apply(ws []write) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := make([]store.Write, 0, len(ws))
	for _, w := range ws {
		if w.done == nil {
			batch = append(batch, w.change())
		}
	}
	outcomes, err := h.store.Apply(ctx, batch)
	if err != nil {
		h.log.Error().Err(err).Int("writes", len(batch)).Msg("storage: a batch of writes failed; writing them one by one")
	}
	i, failed := 0, false
	grew := map[string]bool{}
	for _, w := range ws {
		if w.done != nil {
			close(w.done)
			continue
		}
		if err == nil {
			h.applied(w, outcomes[i])
			i++
		} else if h.applyOne(ctx, w, false) != nil {
			failed = true
			continue
		}
		if w.caller != "" {
			grew[w.caller] = true
		}
	}
	if !failed {
		h.storeWorks()
	}
	h.bound(ctx, grew)
}

// change is w as a store write.
func (w write) change() store.Write {
	c := store.Write{Create: w.create, ID: w.id, Events: w.events}
	if w.end != nil {
		c.Events = append(w.events[:len(w.events):len(w.events)], w.end.last...)
		c.Finish = &store.Ending{Owner: w.end.owner, Status: w.end.status, Result: w.end.result, ResultJSON: w.end.resultJSON, At: w.end.at}
	}
	return c
}

// applied reports a write that Apply made (or refused with err: another
// gateway owns the execution now, or its record exists): its waiter is
// told, event streams are told, and an end goes to the Finished hook.
func (h *History) applied(w write, err error) {
	if w.stored != nil {
		w.stored <- err
	}
	id := w.id
	if w.create != nil {
		id = w.create.ID
	}
	if err != nil {
		h.log.Error().Err(err).Str("execution_id", id).Msg("storage: a write was refused")
		return
	}
	h.broker.notify(id)
	if w.end != nil {
		e := *w.end.record
		e.Status, e.Result, e.FinishedAt, e.Request = w.end.status, w.end.result, w.end.at, nil
		if e.CallbackURL != "" {
			e.Callback.State = store.CallbackPending
		}
		h.ended(&e)
	}
}

// applyOne applies w alone. A refusal (ErrExists, ErrNotOwner) is w's
// outcome; any other error is the store failing: w is kept to be tried
// again (failed), and the error returned. Tried again (retry), a create
// refused as existing is one an earlier try made before the rest failed.
func (h *History) applyOne(ctx context.Context, w write, retry bool) error {
	var err error
	c := w.change()
	if w.create != nil {
		err = h.store.Create(ctx, w.create)
		if retry && errors.Is(err, store.ErrExists) {
			err = nil
		}
		if err == nil {
			w.create = nil // made: a later retry goes on from here
		}
	}
	switch {
	case err != nil:
	case w.end != nil:
		err = h.store.Finish(ctx, w.id, w.end.owner, w.end.status, w.end.result, c.Events, w.end.at)
	case len(c.Events) > 0:
		err = h.store.AppendEvents(ctx, w.id, c.Events)
	}
	if err != nil && !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrNotOwner) {
		h.failed(w, err)
		return err
	}
	h.applied(w, err)
	return nil
}

// flush waits until every write queued before it has been applied.
func (h *History) flush() {
	done := make(chan struct{})
	h.enqueue(write{done: done})
	select {
	case <-done:
	case <-h.written:
	}
}

// recorder is a sink that records the events it passes on. Events come
// masked and capped (the collector has been over them), so the record holds
// what the client got; each gets the next id, and close records the end.
//
// A synchronous execution's record is written once: the events wait here
// until it ends, then go to the writer with the record, already ended, as
// one write (one insert of the record, none to update it). One still running
// after holdRecord is created then, with the events so far, and its later
// events follow as they come, so that a long execution can be watched. One
// refused before it started has no events and no record.
type recorder struct {
	sink
	h      *History
	id     string
	record *store.Execution // as created (sync) or claimed (async)

	mu      sync.Mutex // guards what follows: the hold's timer writes too
	pending bool       // the record is to be created, with held
	held    []store.Event
	timer   *time.Timer // ends the hold
	over    bool        // the hold is over: the first event creates the record
	created bool
	ended   bool // the end is written (or on its way)
	// sync marks a synchronous execution's record: its result is passed on
	// to the client only once the record, ended, is stored, so that the
	// client can read it as soon as it has its answer.
	sync bool

	seq      int64
	skipNext bool // a re-run: its start event is stored already
	logs     []execution.Log
	final    *execution.Result
	last     []store.Event // the result event, stored with the end
	// stopped is why the execution was stopped before its result; nil, or
	// errCancelled, or a shutdown (the record is left running for Recover).
	stopped error
}

// holdRecord is how long a synchronous execution's record waits to be
// written whole, once it has ended: most end sooner. A running one is
// visible in GET /executions after it.
const holdRecord = 50 * time.Millisecond

// record wraps out so that the execution's events are recorded: the hook
// of POST /execute. With no History it returns out.
func (h *History) record(out sink, job *execution.Job, caller string) sink {
	if h == nil {
		return out
	}
	now := time.Now()
	r := &recorder{sink: out, h: h, id: job.ID, pending: true, sync: true, record: &store.Execution{
		ID: job.ID, Caller: caller, Status: store.Running, Owner: h.owner,
		Outbound: job.SideEffects(), Retry: job.Retry, CreatedAt: now, StartedAt: now,
	}}
	r.timer = time.AfterFunc(holdRecord, r.release)
	return r
}

func (r *recorder) event(ev execution.Event) error {
	r.store(ev)
	if ev.Type == execution.EventResult && r.sync {
		// The answer's result is what is stored: encoded once, first.
		if agg, ok := r.sink.(*aggregateSink); ok {
			if err := agg.prepare(ev); err != nil {
				return err
			}
		}
		if err := r.endNow(); err != nil {
			return fmt.Errorf("%w: %w", errRecordLost, err)
		}
	}
	return r.sink.event(ev)
}

// abort stops the answer without its end: the client sees it cut.
func (r *recorder) abort(err error) { r.sink.abort(err) }

// endNow stores the execution's end and waits until it is stored: nil, or
// why it was not (it is kept and tried again, but the answer cannot say it
// was kept).
func (r *recorder) endNow() error {
	w, ok := r.ending()
	if !ok {
		return nil
	}
	w.stored = make(chan error, 1)
	select {
	case r.h.writes <- w:
	case <-r.h.stop:
		return errShutdown
	}
	select {
	case err := <-w.stored:
		return err
	case <-r.h.written:
		return errShutdown
	}
}

// release ends the hold: an execution that has events and is still running
// gets its record, with them; one with none yet (its start was slower than
// the hold, as under load) gets it with its first event.
func (r *recorder) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.over = true
	r.create()
}

// create writes the held record once the hold is over and it has events.
// r.mu is held.
func (r *recorder) create() {
	if r.over && r.pending && len(r.held) > 0 {
		r.h.enqueue(write{create: r.record, id: r.id, caller: r.record.Caller, events: r.held})
		r.pending, r.created, r.held = false, true, nil
	}
}

// store records ev.
func (r *recorder) store(ev execution.Event) {
	switch ev.Type {
	case execution.EventStart:
		if r.skipNext {
			r.skipNext = false
			return
		}
	case execution.EventLog:
		r.logs = append(r.logs, *ev.Log)
	case execution.EventRestart:
		r.logs = r.logs[:0]
	case execution.EventResult:
		res := *ev.Result
		res.Logs = append([]execution.Log{}, r.logs...)
		r.final = &res
	}
	// MarshalJSON's own output is compact already: json.Marshal would only
	// check and copy it again, which for a guest printing in a loop was a
	// third of what recording its events cost.
	data, err := ev.MarshalJSON()
	if err != nil {
		return
	}
	r.seq++
	stored := store.Event{Seq: r.seq, Type: ev.Type, Data: data}
	if ev.Type == execution.EventResult {
		// Stored with the end, in one transaction: a record has its
		// result event exactly when it has finished.
		r.last = []store.Event{stored}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending {
		r.held = append(r.held, stored)
		r.create()
		return
	}
	r.h.enqueue(write{id: r.id, caller: r.record.Caller, events: []store.Event{stored}})
}

func (r *recorder) close() {
	r.sink.close()
	r.end()
}

// end records how the execution ended: finished with its result, or
// cancelled (by DELETE, or its client went away). One stopped by a
// shutdown is left running for the next Recover.
func (r *recorder) end() {
	if w, ok := r.ending(); ok {
		r.h.enqueue(w)
	}
}

// ending is the write that records how the execution ended, once: false
// when there is none to make (refused before it started, ended already, or
// never created).
func (r *recorder) ending() (write, bool) {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.pending && len(r.held) == 0 && r.last == nil {
		return write{}, false // refused before it started: no record
	}
	r.ended = true
	caller := r.record.Caller
	e := &ending{owner: r.h.owner, status: store.Finished, result: r.final, last: r.last, record: r.record, at: time.Now()}
	switch {
	case r.final != nil:
		if agg, ok := r.sink.(*aggregateSink); ok {
			e.resultJSON = agg.body // the same events made it: the same result
		}
	case r.stopped == nil || r.stopped == errCancelled:
		e.status = store.Cancelled
	default:
		if r.pending { // a shutdown: the record is written running, for Recover
			r.pending, r.created = false, true
			return write{create: r.record, id: r.id, caller: caller, events: r.held}, true
		}
		return write{}, false
	}
	if r.pending {
		// Written whole: the record as it ended, with its events.
		w := write{create: r.record, id: r.id, caller: caller, events: r.held, end: e}
		r.pending, r.created, r.held = false, true, nil
		return w, true
	}
	if !r.created {
		return write{}, false
	}
	return write{id: r.id, caller: caller, end: e}, true
}
