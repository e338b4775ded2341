package api

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/dynamic-workers/gateway/execution"
)

// sink renders an execution's events: all at once as one JSON result, or
// each as it happens as NDJSON or Server-Sent Events. Its methods are called
// from the request's goroutine; what it renders goes to the client through
// an outbox, so a client that reads slowly never holds up the execution.
type sink interface {
	// event renders one event; start comes first, result last. An error
	// means the client cannot keep up: the execution should stop.
	event(ev execution.Event) error
	// started reports whether the response has begun (its status is sent
	// or on its way): errors can no longer be problem responses.
	started() bool
	// close waits until the response is sent, or the request's lifetime
	// is over, or the client failed; in the last two cases it drops the
	// connection.
	close()
	// abort stops the response where it is, for err: close then drops the
	// connection, so the client sees it cut short.
	abort(err error)
}

// newSink returns the sink for the negotiated media type.
func newSink(w http.ResponseWriter, r *http.Request, media string, opts Options) sink {
	o := newOutbox(w, r, opts)
	if media == mediaJSON {
		return &aggregateSink{o: o}
	}
	if media == mediaSSE {
		o.heartbeat = opts.Heartbeat
	}
	return &streamSink{o: o, sse: media == mediaSSE}
}

// aggregateSink collects the events and answers with the result, with logs.
type aggregateSink struct {
	o    *outbox
	logs []execution.Log
	body []byte // the result as answered (no newline), once it has been
}

// prepare encodes the result of ev, the result event, as the answer.
func (s *aggregateSink) prepare(ev execution.Event) error {
	res := *ev.Result
	res.Logs = s.logs
	if res.Logs == nil {
		res.Logs = []execution.Log{}
	}
	body, err := execution.MarshalResult(&res)
	s.body = body
	return err
}

func (s *aggregateSink) event(ev execution.Event) error {
	switch ev.Type {
	case execution.EventLog:
		s.logs = append(s.logs, *ev.Log)
	case execution.EventRestart:
		s.logs = s.logs[:0] // the execution runs again
	case execution.EventResult:
		s.body = ev.ResultJSON // the result with its logs, as its record stores it
		if s.body == nil {
			if err := s.prepare(ev); err != nil {
				return err
			}
		}
		body := append(s.body[:len(s.body):len(s.body)], '\n')
		h := s.o.w.Header()
		h.Set("Content-Type", mediaJSON)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		s.o.w.WriteHeader(http.StatusOK)
		s.o.hold(body) // written by close, once the execution is over
		return nil
	}
	return nil
}

func (s *aggregateSink) started() bool   { return s.o.started() }
func (s *aggregateSink) close()          { s.o.close() }
func (s *aggregateSink) abort(err error) { s.o.fail(err, "") }

// streamSink sends each event as soon as it happens.
type streamSink struct {
	o   *outbox
	sse bool
}

func (s *streamSink) started() bool   { return s.o.started() }
func (s *streamSink) close()          { s.o.close() }
func (s *streamSink) abort(err error) { s.o.fail(err, "") }

// begin sends the headers and hands the response to the outbox's writer.
func (s *streamSink) begin() {
	h := s.o.w.Header()
	if s.sse {
		h.Set("Content-Type", mediaSSE)
	} else {
		h.Set("Content-Type", mediaNDJSON)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell nginx-style proxies not to buffer
	s.o.w.WriteHeader(http.StatusOK)
	s.o.start()
}

func (s *streamSink) event(ev execution.Event) error {
	if !s.o.started() {
		s.begin()
	}
	// MarshalJSON's output is compact already: json's encoder would only
	// check and copy it again.
	data, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if s.sse {
		var b bytes.Buffer
		b.Grow(len(data) + len(ev.Type) + 16)
		b.WriteString("event: ")
		b.WriteString(ev.Type)
		b.WriteString("\ndata: ")
		b.Write(data)
		b.WriteByte('\n')
		data = b.Bytes()
	}
	return s.o.push(data, ev.Type == execution.EventResult)
}
