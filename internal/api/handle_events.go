package api

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// eventsPage is how many stored events one read returns.
const eventsPage = 256

// handleEvents serves GET /executions/{id}/events: the record's events
// from the start (or after the event a client saw last: SSE Last-Event-ID,
// or ?after=), then each new one as it is recorded, until the execution has
// ended. Every event carries its id: SSE's id field, NDJSON's eventId.
func handleEvents(h *History, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		media, err := negotiate(r.Header.Get("Accept"))
		if err != nil {
			return err
		}
		sse := media == mediaSSE
		after, err := resumePoint(r)
		if err != nil {
			return err
		}
		e, err := h.lookup(r)
		if err != nil {
			return err
		}
		done, ok := h.openStream(e.Caller)
		if !ok {
			return newProblem(http.StatusTooManyRequests, execution.ProblemConcurrencyLimited,
				"this API key has "+strconv.Itoa(MaxEventStreamsPerKey)+" event streams open; close one first")
		}
		defer done()
		hdr := w.Header()
		hdr.Set("Content-Type", map[bool]string{true: mediaSSE, false: mediaNDJSON}[sse])
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		s := &eventStream{w: w, rc: http.NewResponseController(w), sse: sse, writeTimeout: opts.WriteTimeout}
		if err := h.follow(r, e, after, s, opts.Heartbeat); err != nil && r.Context().Err() == nil {
			hlog.FromRequest(r).Warn().Err(err).Msg("event stream ended early")
		}
		return nil
	}
}

// MaxEventStreamsPerKey bounds the event streams one key has open on a
// gateway: each holds a goroutine and reads the store every poll while its
// execution has not ended.
const MaxEventStreamsPerKey = 64

// MaxReadsPerKey bounds the record reads (GET /executions and GET
// /executions/{id}) one key has in flight on a gateway: a read holds one
// record's result at most, so a key's reads hold at most this many; past
// it, 429, and other keys' reads go on.
const MaxReadsPerKey = 16

// openStream counts an event stream of caller, unless it has
// MaxEventStreamsPerKey open; done uncounts it.
func (h *History) openStream(caller string) (done func(), ok bool) {
	return h.count(h.streams, caller, MaxEventStreamsPerKey)
}

// count counts one more of caller's in n unless it has limit; done
// uncounts it.
func (h *History) count(n map[string]int, caller string, limit int) (done func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n[caller] >= limit {
		return nil, false
	}
	n[caller]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if n[caller]--; n[caller] == 0 {
			delete(n, caller)
		}
	}, true
}

// limitReads bounds the reads of one key in flight: MaxReadsPerKey, then
// 429 concurrency_limited.
func (h *History) limitReads(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		done, ok := h.count(h.reads, callerOf(r.Context()).name, MaxReadsPerKey)
		if !ok {
			p := newProblem(http.StatusTooManyRequests, execution.ProblemConcurrencyLimited,
				"this API key has "+strconv.Itoa(MaxReadsPerKey)+" reads of its records in flight; retry when one has ended")
			p.retryAfter = 1
			return p
		}
		defer done()
		return next(w, r)
	}
}

// resumePoint is the id of the last event the client has seen: 0 for none.
func resumePoint(r *http.Request) (int64, error) {
	field, raw := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if raw == "" {
		field, raw = "after", r.URL.Query().Get("after")
	}
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		p := newProblem(http.StatusUnprocessableEntity, execution.ProblemInvalidRequest, field+" must be an event id")
		p.Errors = []FieldProblem{{Field: field, Code: fieldInvalid, Detail: field + " must be a non-negative integer, an event id"}}
		return 0, p
	}
	return n, nil
}

// follow sends e's events after after until e has ended and every event is
// sent. Its status is read before its events: the writer stores an
// execution's events before its end, so once a final status has been seen,
// the events read after it are all there are.
func (h *History) follow(r *http.Request, e *store.Execution, after int64, s *eventStream, heartbeat time.Duration) error {
	ctx := r.Context()
	poll := time.NewTicker(h.opts.Poll)
	defer poll.Stop()
	idle := time.Now()
	for {
		changed := h.broker.wait(e.ID)
		final := e.Status.Final()
		evs, err := h.store.Events(ctx, e.ID, after, eventsPage)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := s.send(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			idle = time.Now()
			if err := s.flush(); err != nil {
				return err
			}
		}
		if len(evs) == eventsPage {
			continue
		}
		if final {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-poll.C:
			if s.sse && heartbeat > 0 && time.Since(idle) >= heartbeat {
				idle = time.Now()
				if err := s.comment(); err != nil {
					return err
				}
			}
		}
		if e, err = h.store.Head(ctx, e.Caller, e.ID); err != nil {
			return err
		}
	}
}

// eventStream writes stored events as SSE or NDJSON.
type eventStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	sse          bool
	writeTimeout time.Duration
	buf          bytes.Buffer
}

func (s *eventStream) send(ev store.Event) error {
	s.buf.Reset()
	id := strconv.FormatInt(ev.Seq, 10)
	if s.sse {
		s.buf.WriteString("id: " + id + "\nevent: " + ev.Type + "\ndata: ")
		s.buf.Write(ev.Data)
		s.buf.WriteString("\n\n")
	} else {
		// {"eventId":N, then the event's own members (it has a type).
		s.buf.WriteString(`{"eventId":` + id + `,`)
		s.buf.Write(bytes.TrimPrefix(ev.Data, []byte("{")))
		s.buf.WriteByte('\n')
	}
	return s.write(s.buf.Bytes())
}

func (s *eventStream) comment() error {
	if err := s.write([]byte(": heartbeat\n\n")); err != nil {
		return err
	}
	return s.flush()
}

func (s *eventStream) write(b []byte) error {
	if s.writeTimeout > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	_, err := s.w.Write(b)
	return err
}

func (s *eventStream) flush() error { return s.rc.Flush() }
