package executions

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
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

// writer stores records and events, off the executions' paths: one
// goroutine takes the writes as the executions hand them over, in order (a
// record's events before its end), and applies them in batches, one
// transaction each. It keeps the writes the store refused and tries them
// again (health.go), and keeps each key under its storage bound.
//
// Only the holder of applying takes writes from the queue, so they are
// applied in the order they were queued, whoever applies them. A write its
// sender waits for (a synchronous execution's end: storeNow) is applied on
// the sender's goroutine when no one else is applying: two goroutine
// hand-offs fewer per execution than waking the writer and being woken by
// it. Otherwise the sender queues it and waits, as every other write does.
type writer struct {
	store   store.Store
	log     zerolog.Logger
	m       *metrics.Metrics
	broker  *broker
	opts    RecordOptions
	ended   func(*store.Execution) // an end was stored
	writes  chan write             // records and events, written off the hot path
	stop    chan struct{}          // closed by close: the writer drains and ends
	written chan struct{}          // closed when the writer has ended
	health  health                 // whether the store takes writes (health.go)
	// applying is held while writes are taken from the queue and applied.
	applying sync.Mutex
	// kick wakes the writer's goroutine: a write was queued for it.
	kick chan struct{}
	// usage is each caller's stored bytes as last read (bound, health.go);
	// applying is held.
	usage map[string]usageSeen
}

func newWriter(st store.Store, log zerolog.Logger, m *metrics.Metrics, b *broker, opts RecordOptions, ended func(*store.Execution)) *writer {
	return &writer{store: st, log: log, m: m, broker: b, opts: opts, ended: ended,
		writes: make(chan write, 8192), stop: make(chan struct{}), written: make(chan struct{}),
		kick: make(chan struct{}, 1), usage: map[string]usageSeen{}}
}

// enqueue hands w to the writer; it waits only when the writer is far
// behind (the queue is full), and drops w once close has stopped it.
func (h *writer) enqueue(w write) {
	select {
	case h.writes <- w:
	case <-h.stop:
		return
	}
	select {
	case h.kick <- struct{}{}:
	default: // the writer is woken already
	}
}

// storeNow stores w, a write its sender waits for (w.stored is set), and
// returns its outcome: on this goroutine, after what was queued before it,
// if no one is applying writes; else through the queue.
func (h *writer) storeNow(w write) error {
	select {
	case <-h.stop:
		return errShutdown
	default:
	}
	if h.applying.TryLock() {
		select {
		case h.writes <- w:
			// Applied in order: what was queued before w, then w (the
			// writes queued after it are the writer's, woken by them).
			for len(w.stored) == 0 {
				next, ok := h.next()
				if !ok {
					break
				}
				h.apply(h.batch(next))
			}
			h.applying.Unlock()
		default: // the queue is full: the writer is far behind
			h.applying.Unlock()
			h.enqueue(w)
		}
	} else {
		h.enqueue(w)
	}
	select {
	case err := <-w.stored:
		return err
	case <-h.written:
		return errShutdown
	}
}

// close writes what is pending and stops the writer.
func (h *writer) close() {
	close(h.stop)
	<-h.written
}

// run applies the pending writes until close, then what is left.
// Consecutive events of one record become one insert. While the store
// refuses writes, it tries the refused ones again every retryEvery.
func (h *writer) run() {
	defer close(h.written)
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for {
		select {
		case <-h.kick:
			h.drain()
		case <-tick.C:
			if h.Ready() != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				h.applying.Lock()
				h.retry(ctx)
				h.applying.Unlock()
				cancel()
			}
		case <-h.stop:
			h.drain()
			return
		}
	}
}

// drain applies what is queued, in batches, until the queue is empty.
func (h *writer) drain() {
	h.applying.Lock()
	defer h.applying.Unlock()
	for {
		w, ok := h.next()
		if !ok {
			return
		}
		h.apply(h.batch(w))
	}
}

// next takes the first queued write, if there is one; applying is held.
func (h *writer) next() (write, bool) {
	select {
	case w := <-h.writes:
		return w, true
	default:
		return write{}, false
	}
}

// batch merges into w the events of the same record queued right behind
// it, and the writes that come within batchLinger after it, and returns the
// writes to apply: one transaction per batch, not per write (under load a
// commit per write is most of the writer's cost). A write someone waits
// for (stored) ends the lingering: the batch is what is queued by then.
func (h *writer) batch(w write) []write {
	out := []write{w}
	urgent := w.stored != nil
	var linger *time.Timer // made only if the batch lingers: most are urgent
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for len(out) < 256 {
		var next write
		select {
		case next = <-h.writes:
		default:
			if urgent {
				return out
			}
			if linger == nil {
				linger = time.NewTimer(batchLinger)
			}
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
func (h *writer) apply(ws []write) {
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
	grew := map[string]int64{}
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
			grew[w.caller] += int64(w.size())
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
// told, event streams are told, and an end goes to the Finished hook (not
// a hand-back to the queue).
func (h *writer) applied(w write, err error) {
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
	if w.end != nil && w.end.status.Final() {
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
func (h *writer) applyOne(ctx context.Context, w write, retry bool) error {
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
func (h *writer) flush() {
	done := make(chan struct{})
	h.enqueue(write{done: done})
	select {
	case <-done:
	case <-h.written:
	}
}
