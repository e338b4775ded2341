// Package executions is the gateway's execution service
// (execution.Service): what happens to an execution, whichever front door
// it came through (the HTTP API, the MCP server). It validates a request
// and grants its capabilities, keeps each key's quotas, compiles
// TypeScript, runs the execution on the runtime, masks and caps what comes
// out, and records it; it queues executions and runs them on its workers,
// delivers their callbacks, and holds the gateway's lease on what it runs.
//
// Synchronous and queued executions take one path (run.go). The parts,
// each a type with one job:
//
//   - limiter (quota.go): each key's rate, executions, reads and streams;
//   - collector (collect.go): one execution's events, masked and capped;
//   - recorder (recorder.go): one execution's events into its record;
//   - writer (writer.go, health.go): records and events into the store,
//     batched, kept and retried when the store refuses them, and each key
//     held under its storage bound;
//   - broker (broker.go): tells event streams of new events;
//   - running (running.go) and queue (queue.go): the queued executions
//     this gateway runs;
//   - leases (lease.go): the gateway's lease, recovery of what dead
//     gateways left, cancel requests, retention;
//   - callbacks (callback.go): delivery of records to callback URLs.
package executions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/store"
)

// Options configure the service.
type Options struct {
	// Backend runs executions.
	Backend execution.Backend
	// Store keeps records and the queue; nil: no records, no queue.
	Store store.Store
	// Limits are the bounds of an execution request.
	Limits Limits
	// Capabilities are the services a request may ask for by name.
	Capabilities Capabilities
	// Packages resolves and bundles requests' dependencies; nil: a
	// request with dependencies is refused.
	Packages *packages.Manager
	// Quota is the default per-key allowance; zero fields mean unlimited.
	Quota Quota
	// Keys tells the service about an API key by name, as configured now:
	// false for one that is unknown or revoked (a queued execution then
	// runs no more). Nil: every name is a key (no keys configured).
	Keys func(name string) (execution.Caller, bool)
	// Callers lists the configured keys' own quotas (for claims of queued
	// executions); nil: none.
	Callers func() []execution.Caller
	// Metrics are observed; New's if nil.
	Metrics *metrics.Metrics
	// Tracer starts the spans of executions and callbacks (trace.go); nil:
	// none.
	Tracer trace.Tracer
	// Log is the service's log.
	Log zerolog.Logger
	// Now is the clock validation uses; time.Now if nil.
	Now func() time.Time
	// Records configure the records, the queue and callbacks.
	Records RecordOptions
}

// Service is the execution service. Build it with New, Start it, and
// Close it after the front doors have stopped.
type Service struct {
	opts    Options
	backend execution.Backend
	m       *metrics.Metrics
	log     zerolog.Logger
	limiter *limiter
	running *running
	// stopping is when Shutdown was called (Unix ns; 0: not yet);
	// handingOff is set once Handoff stops the runtime; handedOff is
	// closed when it is done, ending event streams (shutdown.go).
	stopping   atomic.Int64
	handingOff atomic.Bool
	handedOff  chan struct{}
	leaveOnce  sync.Once
	scripts    scriptCache

	// With a store:
	store     store.Store
	owner     string // this gateway's name in leases
	writer    *writer
	broker    *broker
	queue     *queue
	leases    *leases
	callbacks *callbacks
	started   bool
}

// New returns the service on opts.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	opts.Quota = opts.Quota.withDefaults()
	opts.Records = opts.Records.withDefaults()
	s := &Service{opts: opts, backend: opts.Backend, m: opts.Metrics, log: opts.Log, store: opts.Store, handedOff: make(chan struct{})}
	s.running = newRunning()
	if s.store == nil {
		s.limiter = newLimiter(opts.Quota, s.running, nil)
		return s
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.owner = "gw_" + hex.EncodeToString(b[:])
	var f *fleet
	if s.store.Shared() {
		f = &fleet{st: s.store, owner: s.owner, log: s.log}
	}
	s.limiter = newLimiter(opts.Quota, s.running, f)
	s.broker = newBroker()
	s.writer = newWriter(s.store, s.log, s.m, s.broker, opts.Records, s.ended)
	s.queue = newQueue(s)
	s.leases = newLeases(s)
	s.callbacks = newCallbacks(s)
	return s
}

// Owner is the name this gateway holds its lease under ("" without a
// store).
func (s *Service) Owner() string { return s.owner }

// Start takes the lease, recovers what a previous process left, and starts
// the writer, the lease loop, the workers and the callback deliveries.
// Starting twice does nothing.
func (s *Service) Start() {
	if s.store == nil || s.started {
		return
	}
	s.started = true
	s.leases.start()
	s.callbacks.start()
	go s.writer.run()
	s.leases.maintain(context.Background())
	s.leases.purge(context.Background())
	s.leases.loop()
	s.queue.start()
}

// Drain stops claiming queued executions; the ones running go on (see
// Shutdown for a gateway that stops).
func (s *Service) Drain() {
	if s.queue != nil {
		s.queue.drain()
	}
}

// Close waits for the queued executions running here until ctx ends,
// stops the callback deliveries (an attempt under way gets its grace;
// those stopped stay pending for the next start), then stops the
// executions (those Handoff did not hand back stay running in the store,
// and the lease is released, so the next recovery queues them again or
// ends them), writes what is pending and releases the lease and its
// slots. It does not close the store. Closing again does nothing.
func (s *Service) Close(ctx context.Context) error {
	if s.store == nil || !s.started {
		return nil
	}
	if !s.queue.close(ctx) {
		return nil // closed before
	}
	s.callbacks.stop()
	s.running.cancelAll(errShutdown)
	s.leases.stop()
	s.queue.wait()
	s.writer.close()
	releaseCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.store.Release(releaseCtx, s.owner)
}

// Recording reports whether executions are recorded.
func (s *Service) Recording() bool { return s.store != nil }

// Ready reports whether a runtime can take executions and the store (if
// any) takes writes.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.refuseStopping(); err != nil {
		return err
	}
	if err := s.backend.Ready(ctx); err != nil {
		return toProblem(err)
	}
	if s.writer != nil {
		return s.writer.Ready()
	}
	return nil
}

// Capabilities lists the capabilities c may use.
func (s *Service) Capabilities(c execution.Caller) execution.CapabilityList {
	return s.opts.Capabilities.list(c.Name)
}

// Bounds are the service's limits on requests and results.
func (s *Service) Bounds() execution.Bounds {
	l := s.opts.Limits
	return execution.Bounds{
		DefaultTimeoutMs: int(l.DefaultTimeout.Milliseconds()), MaxTimeoutMs: int(l.MaxTimeout.Milliseconds()),
		MaxCodeBytes: l.MaxCodeBytes, MaxModules: l.MaxModules, MaxEnvBytes: l.MaxEnvBytes,
		MaxLogBytes: l.MaxLogBytes, MaxLogLineBytes: l.MaxLogLineBytes, MaxResponseBytes: l.MaxResponseBytes,
		CompatibilityDate: l.CompatibilityDate,
	}
}

// ended hands a final record to the Finished hook and, if it has a
// callback URL, wakes the deliveries: the store made its callback pending
// when it stored the end.
func (s *Service) ended(e *store.Execution) {
	if e == nil {
		return
	}
	if e.CallbackURL != "" {
		s.callbacks.wake()
	}
	if s.opts.Records.Finished != nil {
		go s.opts.Records.Finished(context.WithoutCancel(context.Background()), e)
	}
}

// Causes of a cancelled execution context.
var (
	errCancelled = errors.New("cancelled by DELETE /executions/{id}")
	errShutdown  = errors.New("the gateway is shutting down")
	errLeaseLost = errors.New("the gateway lost its lease")
)

var _ execution.Service = (*Service)(nil)

// RecordOptions configure the records, the queue of asynchronous
// executions and their callbacks (with a store).
type RecordOptions struct {
	// Workers run queued executions at once (default 4).
	Workers int
	// MaxQueued bounds the queue: past it Submit answers ProblemQueueFull
	// (0: no bound).
	MaxQueued int
	// MaxQueuedPerKey bounds one key's queued executions, unless its own
	// (Caller.MaxQueued) does: past it Submit answers ProblemQueueLimited
	// to that key only (0: no bound but MaxQueued).
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
	// MaxScriptBytesPerKey bounds the bytes one key's stored scripts take
	// (every version, its dependencies bundled): past it PutScript answers
	// ProblemScriptsFull. 0: no bound.
	MaxScriptBytesPerKey int64
}

// withDefaults is o with the zero fields that need one set.
func (o RecordOptions) withDefaults() RecordOptions {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	return o
}
