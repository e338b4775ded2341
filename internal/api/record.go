package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// write is one pending change to the store: a new record, events of a
// record, or its end. The writer applies them in order, so a record's
// events are stored before its final status.
type write struct {
	create *store.Execution
	id     string
	events []store.Event
	end    *ending
	caller string
	done   chan struct{} // closed once applied (for tests and Close)
}

// ending is how an execution ended.
type ending struct {
	owner  string
	status store.Status
	result *execution.Result
	last   []store.Event // stored with the end: the result event
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
// Consecutive events of one record become one insert.
func (h *History) writer() {
	defer close(h.written)
	for {
		select {
		case w := <-h.writes:
			h.apply(h.batch(w))
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
// it, and returns the writes to apply.
func (h *History) batch(w write) []write {
	out := []write{w}
	for len(out) < 64 {
		select {
		case next := <-h.writes:
			last := &out[len(out)-1]
			if next.create == nil && next.end == nil && next.done == nil &&
				last.create == nil && last.end == nil && last.done == nil && last.id == next.id {
				last.events = append(last.events, next.events...)
				continue
			}
			out = append(out, next)
		default:
			return out
		}
	}
	return out
}

func (h *History) apply(ws []write) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, w := range ws {
		h.applyOne(ctx, w)
		if w.done != nil {
			close(w.done)
		}
	}
}

func (h *History) applyOne(ctx context.Context, w write) {
	switch {
	case w.create != nil:
		if err := h.store.Create(ctx, w.create); err != nil {
			h.log.Error().Err(err).Str("execution_id", w.create.ID).Msg("storage: recording the execution failed")
		}
	case len(w.events) > 0:
		if err := h.store.AppendEvents(ctx, w.id, w.events); err != nil {
			h.log.Error().Err(err).Str("execution_id", w.id).Msg("storage: recording events failed")
		}
		h.broker.notify(w.id)
	case w.end != nil:
		err := h.store.Finish(ctx, w.id, w.end.owner, w.end.status, w.end.result, w.end.last, time.Now())
		if err != nil {
			h.log.Error().Err(err).Str("execution_id", w.id).Msg("storage: recording the end of the execution failed")
			return
		}
		h.broker.notify(w.id)
		if h.opts.Finished != nil {
			e, err := h.store.Get(ctx, w.caller, w.id)
			if err != nil {
				h.log.Error().Err(err).Str("execution_id", w.id).Msg("storage: reading the finished record failed")
				return
			}
			h.ended(e)
		}
	}
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

// recorder is a sink that records the events it passes on: a synchronous
// execution's record is created with its first event (one refused before it
// started has none), each event gets the next id, and close records the
// end. Events come masked and capped (the collector has been over them), so
// the record holds what the client got.
type recorder struct {
	sink
	h        *History
	id       string
	caller   string
	pending  *store.Execution // the record to create with the first event
	created  bool
	seq      int64
	skipNext bool // a re-run: its start event is stored already
	logs     []execution.Log
	final    *execution.Result
	last     []store.Event // the result event, stored with the end
	// stopped is why the execution was stopped before its result; nil, or
	// errCancelled, or a shutdown (the record is left running for Recover).
	stopped error
}

// record wraps out so that the execution's events are recorded: the hook
// of POST /execute. With no History it returns out.
func (h *History) record(out sink, job *execution.Job, caller string) sink {
	if h == nil {
		return out
	}
	now := time.Now()
	return &recorder{sink: out, h: h, id: job.ID, caller: caller, pending: &store.Execution{
		ID: job.ID, Caller: caller, Status: store.Running, Owner: h.owner,
		Outbound: job.Egress != nil, CreatedAt: now, StartedAt: now,
	}}
}

func (r *recorder) event(ev execution.Event) error {
	r.store(ev)
	return r.sink.event(ev)
}

// store records ev.
func (r *recorder) store(ev execution.Event) {
	if r.pending != nil {
		r.h.enqueue(write{create: r.pending})
		r.pending, r.created = nil, true
	}
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
	data, err := json.Marshal(ev)
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
	r.h.enqueue(write{id: r.id, events: []store.Event{stored}})
}

func (r *recorder) close() {
	r.sink.close()
	r.end()
}

// end records how the execution ended: finished with its result, or
// cancelled (by DELETE, or its client went away). One stopped by a
// shutdown is left running for the next Recover.
func (r *recorder) end() {
	if !r.created {
		return
	}
	e := &ending{owner: r.h.owner, status: store.Finished, result: r.final, last: r.last}
	switch {
	case r.final != nil:
	case r.stopped == nil || r.stopped == errCancelled:
		e.status = store.Cancelled
	default:
		return
	}
	r.h.enqueue(write{id: r.id, caller: r.caller, end: e})
}
