package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// sink renders an execution's events: all at once as one JSON result, or
// each as it happens as NDJSON or Server-Sent Events.
type sink interface {
	// event renders one event; start comes first, result last.
	event(ev execution.Event) error
	// started reports whether anything was sent to the client yet.
	started() bool
	// close stops what the sink runs in the background.
	close()
}

// aggregateSink collects the events and answers with the result, with logs.
type aggregateSink struct {
	w    http.ResponseWriter
	logs []execution.Log
	done bool
}

func (s *aggregateSink) event(ev execution.Event) error {
	switch ev.Type {
	case execution.EventLog:
		s.logs = append(s.logs, *ev.Log)
	case execution.EventRestart:
		s.logs = s.logs[:0] // the execution runs again
	case execution.EventResult:
		res := *ev.Result
		res.Logs = s.logs
		if res.Logs == nil {
			res.Logs = []execution.Log{}
		}
		s.done = true
		encode(s.w, http.StatusOK, mediaJSON, &res)
	}
	return nil
}

func (s *aggregateSink) started() bool { return s.done }
func (s *aggregateSink) close()        {}

// streamSink writes each event as soon as it happens and flushes it.
type streamSink struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	sse       bool
	heartbeat time.Duration

	mu        sync.Mutex
	begun     bool
	lastWrite time.Time
	stop      chan struct{}
	buf       bytes.Buffer
}

func newStreamSink(w http.ResponseWriter, media string, heartbeat time.Duration) *streamSink {
	return &streamSink{
		w:         w,
		rc:        http.NewResponseController(w),
		sse:       media == mediaSSE,
		heartbeat: heartbeat,
		stop:      make(chan struct{}),
	}
}

func (s *streamSink) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.begun
}

// begin sends the headers; for SSE it starts the heartbeat.
func (s *streamSink) begin() {
	h := s.w.Header()
	if s.sse {
		h.Set("Content-Type", mediaSSE)
	} else {
		h.Set("Content-Type", mediaNDJSON)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell nginx-style proxies not to buffer
	s.w.WriteHeader(http.StatusOK)
	s.begun = true
	s.lastWrite = time.Now()
	if s.sse && s.heartbeat > 0 {
		go s.beat()
	}
}

func (s *streamSink) event(ev execution.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.begun {
		s.begin()
	}
	s.buf.Reset()
	if s.sse {
		s.buf.WriteString("event: ")
		s.buf.WriteString(ev.Type)
		s.buf.WriteString("\ndata: ")
	}
	enc := json.NewEncoder(&s.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil { // Encode ends the line with \n
		return err
	}
	if s.sse {
		s.buf.WriteByte('\n')
	}
	return s.write(s.buf.Bytes())
}

func (s *streamSink) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	s.lastWrite = time.Now()
	return s.rc.Flush()
}

// beat sends an SSE comment whenever the stream has been silent for a
// heartbeat interval, so proxies do not cut an idle stream.
func (s *streamSink) beat() {
	t := time.NewTicker(s.heartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if time.Since(s.lastWrite) >= s.heartbeat {
				_ = s.write([]byte(": heartbeat\n\n"))
			}
			s.mu.Unlock()
		}
	}
}

func (s *streamSink) close() {
	close(s.stop)
}
