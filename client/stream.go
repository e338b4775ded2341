package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"

	"github.com/dynamic-workers/gateway/execution"
)

// Stream is an execution in progress, read one event at a time:
//
//	s, err := c.Stream(ctx, req)
//	if err != nil { … }
//	defer s.Close()
//	for s.Next() {
//		ev := s.Event()
//		…
//	}
//	if err := s.Err(); err != nil { … }
//
// or, equivalently, with a range loop over s.Events(). A Stream is not safe
// for concurrent use.
type Stream struct {
	ctx    context.Context
	resp   *http.Response
	r      *bufio.Reader
	ev     execution.Event
	result *execution.Result
	err    error
	done   bool
}

func newStream(ctx context.Context, resp *http.Response) *Stream {
	return &Stream{ctx: ctx, resp: resp, r: bufio.NewReader(resp.Body)}
}

// ID returns the execution's id, which the gateway sends before any event.
func (s *Stream) ID() string { return s.resp.Header.Get("X-Execution-Id") }

// Next waits for the next event and reports whether there is one. It
// returns false after the result event, which is always the last, or when
// the stream failed: then Err says why.
func (s *Stream) Next() bool {
	if s.done {
		return false
	}
	if s.result != nil {
		s.finish(nil)
		return false
	}
	for {
		line, err := s.r.ReadBytes('\n')
		if err != nil {
			s.finish(s.readError(err))
			return false
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		ev, known, err := decodeEvent(line)
		if err != nil {
			s.finish(err)
			return false
		}
		if !known {
			continue // an event type added after this client: skip it
		}
		s.ev = ev
		if ev.Type == execution.EventResult {
			s.result = ev.Result
		}
		return true
	}
}

// Event returns the event Next read last: start (with ID), log (with Log),
// restart (with Reason: the gateway runs the execution again, and the logs
// read before it are void), or result (with Result, whose Logs is unset:
// the logs came as events).
func (s *Stream) Event() execution.Event { return s.ev }

// Result returns the execution's result once Next has read it, else nil.
func (s *Stream) Result() *execution.Result { return s.result }

// Err returns why the stream failed, or nil if it ended with its result. It
// is the context's error if the context ended, and ErrIncompleteStream if
// the connection was cut before the result.
func (s *Stream) Err() error { return s.err }

// Close ends the stream. Closing it before its result hangs up, and the
// gateway cancels the execution. Close may be called more than once.
func (s *Stream) Close() error {
	if !s.done {
		s.done = true
		return s.resp.Body.Close()
	}
	return nil
}

// Events returns the stream's events for a range loop. A failure comes as
// a last pair with a zero Event and the error. The stream is closed when the
// loop ends, also when it is left early (which cancels the execution).
func (s *Stream) Events() iter.Seq2[execution.Event, error] {
	return func(yield func(execution.Event, error) bool) {
		defer s.Close()
		for s.Next() {
			if !yield(s.Event(), nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield(execution.Event{}, err)
		}
	}
}

// finish ends the stream with err; a stream that ended well is drained
// first, so its connection can be reused.
func (s *Stream) finish(err error) {
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(s.r, 4<<10))
	}
	s.err = err
	_ = s.Close()
}

// readError explains a failed read of the stream.
func (s *Stream) readError(err error) error {
	if ctxErr := s.ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, io.EOF) {
		return ErrIncompleteStream
	}
	return fmt.Errorf("client: read stream: %w", err)
}

// decodeEvent reads one NDJSON line; known is false for an event type this
// client does not know.
func decodeEvent(line []byte) (ev execution.Event, known bool, err error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return ev, false, fmt.Errorf("client: bad event %.100q: %w", line, err)
	}
	switch head.Type {
	case execution.EventStart, execution.EventLog, execution.EventRestart, execution.EventResult, execution.EventOutbound, execution.EventInstall:
	default:
		return ev, false, nil
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return ev, false, fmt.Errorf("client: bad %s event: %w", head.Type, err)
	}
	return ev, true, nil
}
