package api

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/metrics"
)

// errSlowClient is a client reading an execution's events slower than the
// execution makes them, past the bytes the gateway holds for it.
var errSlowClient = errors.New("client reads too slowly")

// errLifetime is a request past its lifetime with its response unsent.
var errLifetime = errors.New("request lifetime over")

// writePiece is the most written to the client under one write deadline: a
// client must take this much per http.write_timeout to stay connected.
const writePiece = 64 << 10

// outbox decouples a response from the execution that produces it: the
// execution hands it chunks (push), which never blocks, and a writer
// goroutine writes them to the client with a deadline per write and flushes
// each batch as soon as it is there. The chunks waiting are bounded in bytes
// except the final one; past the bound push fails, which cancels the
// execution. close waits for the writer up to the request's lifetime, then
// drops the connection.
type outbox struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	log          *zerolog.Logger
	m            *metrics.Metrics
	writeTimeout time.Duration
	end          time.Time // the request's lifetime; zero: none
	limit        int       // bytes that may wait, the final chunk apart
	heartbeat    time.Duration

	mu      sync.Mutex
	queue   [][]byte
	waiting int           // bytes pushed and not yet written
	closed  bool          // no more chunks
	err     error         // why delivery stopped early
	failed  chan struct{} // closed when err is set
	wake    chan struct{} // the writer has something to do
	done    chan struct{} // closed when the writer returns; nil until start (or hold)
	// held is a whole response that close writes on the caller's
	// goroutine (hold), with no writer goroutine.
	held []byte
}

func newOutbox(w http.ResponseWriter, r *http.Request, opts Options) *outbox {
	end, _ := r.Context().Deadline()
	return &outbox{
		w:            w,
		rc:           http.NewResponseController(w),
		log:          zerolog.Ctx(r.Context()),
		m:            opts.Metrics,
		writeTimeout: opts.WriteTimeout,
		end:          end,
		limit:        opts.ClientBufferBytes,
		failed:       make(chan struct{}),
		wake:         make(chan struct{}, 1),
	}
}

// start launches the writer. The caller has set the response's headers and
// status and touches the ResponseWriter no more.
func (o *outbox) start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done == nil {
		o.done = make(chan struct{})
		go o.run()
	}
}

// hold takes b as the whole response, for close to write on the
// caller's goroutine once the execution is over: an answer of one piece
// needs no writer goroutine of its own (whose stack grows through
// net/http's writes, every time). The caller has set the response's
// headers and status.
func (o *outbox) hold(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done == nil {
		o.done = make(chan struct{})
		o.held = b
		o.waiting += len(b)
	}
}

// started reports whether the response is in the writer's hands.
func (o *outbox) started() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done != nil
}

// push queues b for the client. A final chunk is always taken (its size is
// bounded by the execution's caps and the execution is over); others fail
// with errSlowClient once the bytes waiting would pass the limit.
func (o *outbox) push(b []byte, final bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if !final && o.limit > 0 && o.waiting+len(b) > o.limit {
		o.failLocked(errSlowClient, "buffer_full")
		return o.err
	}
	o.queue = append(o.queue, b)
	o.waiting += len(b)
	o.signal()
	return nil
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// failLocked stops delivery for err, counting and logging a slow client
// under reason (if not empty); the first error wins.
func (o *outbox) failLocked(err error, reason string) {
	if o.err != nil {
		return
	}
	o.err = err
	close(o.failed)
	o.signal()
	if reason != "" {
		o.m.SlowClients.WithLabelValues(reason).Inc()
		o.log.Warn().Str("reason", reason).Int("buffered_bytes", o.waiting).Msg("client reads too slowly; connection dropped")
	}
}

func (o *outbox) fail(err error, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failLocked(err, reason)
}

// take returns the chunks waiting, and whether the writer is done: closed
// with nothing left, or failed.
func (o *outbox) take() ([][]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, true
	}
	chunks := o.queue
	o.queue = nil
	return chunks, len(chunks) == 0 && o.closed
}

// run is the writer: it writes what is pushed, and for SSE a heartbeat
// comment whenever the stream has been silent for a heartbeat interval.
func (o *outbox) run() {
	defer close(o.done)
	var beat <-chan time.Time
	if o.heartbeat > 0 {
		t := time.NewTicker(max(o.heartbeat/2, time.Millisecond))
		defer t.Stop()
		beat = t.C
	}
	last := time.Now()
	for {
		chunks, done := o.take()
		if done {
			return
		}
		if len(chunks) > 0 {
			if !o.write(chunks) {
				return
			}
			last = time.Now()
			continue
		}
		select {
		case <-o.wake:
		case <-beat:
			if time.Since(last) >= o.heartbeat {
				if !o.write([][]byte{[]byte(": heartbeat\n\n")}) {
					return
				}
				last = time.Now()
			}
		}
	}
}

// write writes chunks in pieces, each under its own deadline, and flushes;
// false means the client is gone or too slow, and delivery has stopped.
func (o *outbox) write(chunks [][]byte) bool {
	n := 0
	for _, c := range chunks {
		for len(c) > 0 {
			p := min(len(c), writePiece)
			if err := o.writeWithDeadline(func() error { _, err := o.w.Write(c[:p]); return err }); err != nil {
				return false
			}
			c, n = c[p:], n+p
		}
	}
	if err := o.writeWithDeadline(o.rc.Flush); err != nil {
		return false
	}
	o.mu.Lock()
	o.waiting -= n
	o.mu.Unlock()
	return true
}

// writeWithDeadline runs one write under the write timeout, cut at the
// request's lifetime; a failure stops delivery.
func (o *outbox) writeWithDeadline(write func() error) error {
	deadline := time.Now().Add(o.writeTimeout)
	if !o.end.IsZero() && o.end.Before(deadline) {
		deadline = o.end
	}
	if err := o.rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
		o.fail(err, "")
		return err
	}
	err := write()
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded) && !o.end.IsZero() && !time.Now().Before(o.end):
		o.fail(errLifetime, "lifetime")
	case errors.Is(err, os.ErrDeadlineExceeded):
		o.fail(fmt.Errorf("%w: no progress in %v", errSlowClient, o.writeTimeout), "write_timeout")
	default:
		o.fail(err, "") // the client went away
	}
	return err
}

// close says no more chunks come and waits for the writer to send what is
// left, until the request's lifetime. If delivery failed or the lifetime
// ends first, it drops the connection: the write in progress fails at once,
// and the server closes a connection whose write failed.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.signal()
	done, held := o.done, o.held
	o.held = nil
	failed := o.err != nil
	o.mu.Unlock()
	if done == nil {
		return
	}
	if held != nil {
		// Written here, each piece under the write timeout cut at the
		// request's lifetime, as the writer would. Delivery that failed,
		// or an abort before it, leaves the response cut short.
		if !failed {
			o.write([][]byte{held})
		}
		close(done)
		return
	}
	var lifetime <-chan time.Time
	if !o.end.IsZero() {
		t := time.NewTimer(time.Until(o.end))
		defer t.Stop()
		lifetime = t.C
	}
	select {
	case <-done:
	case <-o.failed:
	case <-lifetime:
		select {
		case <-done: // finished just in time
		default:
			o.fail(errLifetime, "lifetime")
		}
	}
	o.mu.Lock()
	failed = o.err != nil
	o.mu.Unlock()
	if failed {
		_ = o.rc.SetWriteDeadline(time.Now())
		<-done
	}
}
