package executions

import (
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

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
	sink   func(execution.Event) error // where the events go on to
	h      *writer
	owner  string // this gateway
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
	// finalJSON is final encoded: stored as it is, and handed on with the
	// result event for a front door that answers with it whole.
	finalJSON []byte
	last      []store.Event // the result event, stored with the end
	// stopped is why the execution was stopped before its result; nil, or
	// errCancelled, or errHandoff (a queued one goes back to the queue), or
	// a shutdown (the record is left running for Recover).
	stopped error
}

// holdRecord is how long a synchronous execution's record waits to be
// written whole, once it has ended: most end sooner. A running one is
// visible in GET /executions after it.
const holdRecord = 50 * time.Millisecond

// recordSync is the recorder of a synchronous execution, handing its
// events on to out once recorded;
// traceparent is the trace the execution's spans belong to ("" if none).
func (s *Service) recordSync(out func(execution.Event) error, job *execution.Job, caller, traceparent string) *recorder {
	now := time.Now()
	r := &recorder{sink: out, h: s.writer, owner: s.owner, id: job.ID, pending: true, sync: true, record: &store.Execution{
		ID: job.ID, Caller: caller, Status: store.Running, Owner: s.owner,
		Outbound: job.SideEffects(), Retry: job.Retry, CreatedAt: now, StartedAt: now, Trace: traceparent,
	}}
	r.timer = time.AfterFunc(holdRecord, r.release)
	return r
}

// recordQueued is the recorder of a queued execution, claimed as e.
func (s *Service) recordQueued(e *store.Execution) *recorder {
	return &recorder{sink: func(execution.Event) error { return nil }, h: s.writer, owner: s.owner, id: e.ID,
		record: e, created: true, seq: e.LastEvent, skipNext: e.LastEvent > 0}
}

func (r *recorder) event(ev execution.Event) error {
	r.store(ev)
	if ev.Type == execution.EventResult && r.sync {
		if err := r.endNow(); err != nil {
			r.h.log.Error().Err(err).Str("execution_id", r.id).Msg("the execution ended but its record could not be stored; its result is not reported")
			return errRecordLost
		}
		ev.ResultJSON = r.finalJSON
	}
	return r.sink(ev)
}

// endNow stores the execution's end and waits until it is stored: nil, or
// why it was not (it is kept and tried again, but the answer cannot say it
// was kept).
func (r *recorder) endNow() error {
	w, ok := r.ending()
	if !ok {
		return nil
	}
	w.stored = make(chan error, 1)
	return r.h.storeNow(w)
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
		r.finalJSON, _ = execution.MarshalResult(&res)
	}
	// MarshalJSON's own output is compact already: json.Marshal would only
	// check and copy it again, a third of what recording a guest printing
	// in a loop costs.
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

// handBack turns e into the hand-back of a queued execution to the queue,
// with a restart event if it had events (they are void now, as after a
// crash).
func (r *recorder) handBack(e *ending) *ending {
	e.status = store.Queued
	if r.seq > 0 {
		ev := execution.Event{Type: execution.EventRestart, Reason: string(execution.CodeRuntimeCrashed)}
		if data, err := ev.MarshalJSON(); err == nil {
			e.last = []store.Event{{Seq: r.seq + 1, Type: ev.Type, Data: data}}
		}
	}
	return e
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
	e := &ending{owner: r.owner, status: store.Finished, result: r.final, resultJSON: r.finalJSON, last: r.last, record: r.record, at: time.Now()}
	switch {
	case r.final != nil:
	case r.stopped == nil || r.stopped == errCancelled:
		e.status = store.Cancelled
	case r.stopped == errHandoff && !r.sync:
		return write{id: r.id, caller: caller, end: r.handBack(e)}, true
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
