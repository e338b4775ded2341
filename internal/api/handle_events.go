package api

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
)

// handleEvents serves GET /executions/{id}/events: the record's events
// from the start (or after the event a client saw last: SSE Last-Event-ID,
// or ?after=), then each new one as it is recorded, until the execution has
// ended. Every event carries its id: SSE's id field, NDJSON's eventId.
func handleEvents(svc execution.Service, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		media, err := negotiate(r.Header.Get("Accept"))
		if err != nil {
			return err
		}
		after, err := resumePoint(r)
		if err != nil {
			return err
		}
		s := &eventStream{w: w, rc: http.NewResponseController(w), sse: media == mediaSSE,
			writeTimeout: opts.WriteTimeout, heartbeat: opts.Heartbeat}
		err = svc.Follow(r.Context(), callerOf(r.Context()), chi.URLParam(r, "id"), after, s.send, s.idle)
		switch {
		case err == nil, r.Context().Err() != nil:
		case !s.begun:
			return err // refused before the stream began: a problem
		default:
			hlog.FromRequest(r).Warn().Err(err).Msg("event stream ended early")
		}
		return nil
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
		p := execution.NewProblem(execution.ProblemInvalidRequest, field+" must be an event id")
		p.Errors = []FieldProblem{{Field: field, Code: execution.FieldInvalid, Detail: field + " must be a non-negative integer, an event id"}}
		return 0, p
	}
	return n, nil
}

// eventStream writes recorded events as SSE or NDJSON, each flushed as it
// is written, with an SSE comment when the stream has been silent for a
// heartbeat.
type eventStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	sse          bool
	writeTimeout time.Duration
	heartbeat    time.Duration
	begun        bool      // the status and headers are sent
	last         time.Time // of the last write
	buf          bytes.Buffer
}

// begin sends the status and headers, once.
func (s *eventStream) begin() {
	if s.begun {
		return
	}
	s.begun = true
	hdr := s.w.Header()
	hdr.Set("Content-Type", map[bool]string{true: mediaSSE, false: mediaNDJSON}[s.sse])
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	s.last = time.Now()
}

func (s *eventStream) send(ev execution.EventRecord) error {
	s.begin()
	s.buf.Reset()
	id := strconv.FormatInt(ev.ID, 10)
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

// idle begins the stream, and sends a heartbeat on a silent SSE stream.
func (s *eventStream) idle() error {
	if !s.begun {
		s.begin()
		return s.rc.Flush()
	}
	if s.sse && s.heartbeat > 0 && time.Since(s.last) >= s.heartbeat {
		return s.write([]byte(": heartbeat\n\n"))
	}
	return nil
}

// write writes b under the write timeout and flushes it.
func (s *eventStream) write(b []byte) error {
	if s.writeTimeout > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	s.last = time.Now()
	return s.rc.Flush()
}
