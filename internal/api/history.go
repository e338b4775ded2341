package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/store"
)

// HistoryOptions configure the execution records and the async queue.
type HistoryOptions struct {
	// Workers run queued executions at once (default 4).
	Workers int
	// MaxQueued bounds the queue: past it POST /executions answers 503
	// (default 1000).
	MaxQueued int
	// MaxQueuedPerKey bounds one key's queued executions, unless its
	// auth.Key.MaxQueued does: past it POST /executions answers 429 to that
	// key only (default MaxQueued).
	MaxQueuedPerKey int
	// Retention is how long a record is kept after it ends (default 7 days).
	Retention time.Duration
	// LeaseTTL is how long the gateway's lease on its running executions
	// lasts without renewal (renewed every third of it; default 15s). A
	// gateway that died is known to be dead after it.
	LeaseTTL time.Duration
	// Poll is how often workers look for work queued by other gateways
	// and event streams for events written by them (default 500ms).
	Poll time.Duration
	// Finished, if set, is called (on its own goroutine) with the record of
	// every execution that reaches a final state: finished or cancelled.
	// Webhook delivery does not wait for it: see Callbacks.
	Finished func(ctx context.Context, e *store.Execution)
	// Callbacks configure the delivery of records to callback URLs.
	Callbacks CallbackOptions
	// MaxStoredBytesPerKey bounds the bytes one key's records take in the
	// store (results and events): past it its oldest ended records are
	// deleted. StoredBytesPerKey overrides it per key name. 0: no bound.
	MaxStoredBytesPerKey int64
	StoredBytesPerKey    map[string]int64
}

// History records every execution in a store, runs the queued ones on its
// workers, and keeps this gateway's lease. Build it with NewHistory, hand it
// to NewHandler in Options.History (which starts it), and Close it after
// the HTTP server has shut down.
type History struct {
	store store.Store
	opts  HistoryOptions
	owner string // this gateway's name in leases
	log   zerolog.Logger

	writes  chan write    // records and events, written off the hot path
	stop    chan struct{} // closed by Close: the writer drains and ends
	written chan struct{} // closed when the writer has ended
	broker  broker
	wake    chan struct{} // a submission: a worker should look now

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // executions running here
	callers map[string]int                     // how many of them per key
	streams map[string]int                     // open event streams per key
	reads   map[string]int                     // record reads in flight per key
	bg      sync.WaitGroup                     // workers and the lease loop
	cancel  context.CancelCauseFunc            // stops workers and the lease loop
	claimMu sync.RWMutex                       // held shared while claiming
	closed  bool
	cb      *callbacks // webhook delivery, from start
	closeMu sync.Mutex // held by Close
	done    bool       // Close has run
	health  health     // whether the store takes writes (storage.go)
}

// Causes of a cancelled execution context.
var (
	errCancelled = errors.New("cancelled by DELETE /executions/{id}")
	errShutdown  = errors.New("the gateway is shutting down")
	errLeaseLost = errors.New("the gateway lost its lease")
)

// NewHistory returns a History on st.
func NewHistory(st store.Store, opts HistoryOptions) *History {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = 1000
	}
	if opts.MaxQueuedPerKey <= 0 {
		opts.MaxQueuedPerKey = opts.MaxQueued
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &History{
		store:   st,
		opts:    opts,
		owner:   "gw_" + hex.EncodeToString(b[:]),
		writes:  make(chan write, 8192),
		stop:    make(chan struct{}),
		written: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		running: map[string]context.CancelCauseFunc{},
		callers: map[string]int{},
		streams: map[string]int{},
		reads:   map[string]int{},
		broker:  broker{waiting: map[string]chan struct{}{}},
		health:  health{m: metrics.New()},
	}
}

// Owner is the name this gateway holds its lease under.
func (h *History) Owner() string { return h.owner }

// start takes the lease, recovers what a previous process left and starts
// the writer, the lease loop and the workers.
func (h *History) start(log zerolog.Logger, run *runner) {
	if h.cancel != nil {
		return // started by an earlier NewHandler
	}
	h.log = log
	if run.opts.Metrics != nil {
		h.health.m = run.opts.Metrics
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel = cancel
	if err := h.store.Lease(ctx, h.owner, time.Now().Add(h.opts.LeaseTTL), false); err != nil {
		log.Error().Err(err).Msg("storage: cannot take the lease; will retry")
	}
	h.startCallbacks()
	go h.writer()
	h.maintain(ctx)
	h.purge(ctx)
	h.bg.Go(func() { h.leaseLoop(ctx) })
	for range h.opts.Workers {
		h.bg.Go(func() { h.work(ctx, run) })
	}
}

// Drain stops claiming queued executions; the ones running go on.
func (h *History) Drain() {
	h.claimMu.Lock()
	h.closed = true
	h.claimMu.Unlock()
}

// Close waits for the executions running on the workers until ctx ends,
// stops the callback deliveries (an attempt under way gets
// Callbacks.Grace; those stopped stay pending for the next start), then
// stops the executions (they stay running in the store, and the lease is
// released, so the next Recover re-queues or ends them), writes what is
// pending and releases the lease. It does not close the store. Closing
// again does nothing.
func (h *History) Close(ctx context.Context) error {
	h.Drain()
	if h.cancel == nil {
		return nil // never started
	}
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.done {
		return nil
	}
	h.done = true
	idle := make(chan struct{})
	go func() {
		for h.busy() {
			time.Sleep(20 * time.Millisecond)
		}
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
	}
	h.stopCallbacks()
	h.cancelAll(errShutdown)
	h.cancel(errShutdown)
	h.bg.Wait()
	close(h.stop)
	<-h.written
	releaseCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.store.Release(releaseCtx, h.owner)
}

// busy reports whether an execution runs here.
func (h *History) busy() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.running) > 0
}

// track registers a running execution of caller and its cancel function.
func (h *History) track(id, caller string, cancel context.CancelCauseFunc) {
	h.mu.Lock()
	h.running[id] = cancel
	h.callers[caller]++
	h.mu.Unlock()
}

func (h *History) untrack(id, caller string) {
	h.mu.Lock()
	delete(h.running, id)
	if h.callers[caller]--; h.callers[caller] <= 0 {
		delete(h.callers, caller)
	}
	h.mu.Unlock()
}

// runningHere counts caller's queued executions running on this gateway
// (0 for a nil History).
func (h *History) runningHere(caller string) int {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.callers[caller]
}

// cancelLocal stops execution id if it runs here.
func (h *History) cancelLocal(id string, cause error) {
	h.mu.Lock()
	cancel := h.running[id]
	h.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (h *History) cancelAll(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cancel := range h.running {
		cancel(cause)
	}
}

// signal wakes a worker.
func (h *History) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// leaseLoop renews the lease, recovers what dead gateways left, forwards
// cancel requests to the executions running here, and purges old records.
func (h *History) leaseLoop(ctx context.Context) {
	tick := time.NewTicker(h.opts.LeaseTTL / 3)
	defer tick.Stop()
	purge := time.NewTicker(min(time.Hour, max(time.Minute, h.opts.Retention/10)))
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-purge.C:
			h.purge(ctx)
		case <-tick.C:
			h.renew(ctx)
			h.maintain(ctx)
		}
	}
}

// renew renews the lease; if it was lost, another gateway may run this
// one's executions now: they stop here, and a new lease is taken.
func (h *History) renew(ctx context.Context) {
	err := h.store.Lease(ctx, h.owner, time.Now().Add(h.opts.LeaseTTL), true)
	if errors.Is(err, store.ErrNoLease) {
		h.log.Error().Msg("storage: the lease was lost; stopping the executions running here")
		h.cancelAll(errLeaseLost)
		err = h.store.Lease(ctx, h.owner, time.Now().Add(h.opts.LeaseTTL), false)
	}
	if err != nil && ctx.Err() == nil {
		h.log.Error().Err(err).Msg("storage: cannot renew the lease")
	}
}

// maintain recovers abandoned executions and forwards cancel requests.
func (h *History) maintain(ctx context.Context) {
	rec, err := h.store.Recover(ctx, time.Now())
	if err != nil && ctx.Err() == nil {
		h.log.Error().Err(err).Msg("storage: recovering abandoned executions failed")
	}
	for _, id := range rec.Requeued {
		h.log.Warn().Str("execution_id", id).Msg("re-queued an execution whose gateway stopped")
		h.broker.notify(id)
		h.signal()
	}
	for _, e := range rec.Crashed {
		h.log.Warn().Str("execution_id", e.ID).Str("status", string(e.Status)).Msg("ended an execution whose gateway stopped")
		h.broker.notify(e.ID)
		h.ended(e)
	}
	ids, err := h.store.CancelRequests(ctx, h.owner)
	if err != nil && ctx.Err() == nil {
		h.log.Error().Err(err).Msg("storage: reading cancel requests failed")
	}
	for _, id := range ids {
		h.cancelLocal(id, errCancelled)
	}
}

func (h *History) purge(ctx context.Context) {
	n, err := h.store.Purge(ctx, time.Now().Add(-h.opts.Retention))
	if err != nil {
		h.log.Error().Err(err).Msg("storage: purging old records failed")
		return
	}
	if n > 0 {
		h.log.Info().Int("records", n).Msg("storage: purged records past their retention")
	}
}

// ended hands a final record to the Finished hook and, if it has a
// callback URL, wakes the delivery loop: the store made its callback
// pending when it stored the end.
func (h *History) ended(e *store.Execution) {
	if e == nil {
		return
	}
	if e.CallbackURL != "" {
		h.wakeCallbacks()
	}
	if h.opts.Finished != nil {
		go h.opts.Finished(context.WithoutCancel(context.Background()), e)
	}
}

// broker tells event streams that an execution has new events or a new
// status: wait returns a channel closed by the next notify.
type broker struct {
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func (b *broker) wait(id string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.waiting[id]
	if !ok {
		ch = make(chan struct{})
		b.waiting[id] = ch
	}
	return ch
}

func (b *broker) notify(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.waiting[id]; ok {
		close(ch)
		delete(b.waiting, id)
	}
}
