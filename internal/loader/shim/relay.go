package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// ErrTimeout is the cause a backend gives the context of an execution that
// ran out of time: a connection lost with it is a timeout, not a crash.
var ErrTimeout = errors.New("execution timed out")

// MaxJobBytes is the largest job the gateway sends a shim, and the bound the
// shim checks a call's Content-Length against before reading its body: both
// read it from worker/src/caps.json.
var MaxJobBytes = int(worker.Caps.MaxJobBytes)

// pingLine is what the shim sends while a guest is silent. netLine is what
// it sends when the guest's first outbound request reaches it: from then on
// the execution has touched the network and is never run again behind the
// caller's back. Neither is an event. Each is {"type":…} with the type
// contract.json names, spelled as the shim's JSON.stringify writes it.
var (
	pingLine = typeLine(worker.Contract.PingType)
	netLine  = typeLine(worker.Contract.NetType)
)

func typeLine(typ string) []byte {
	line, err := json.Marshal(struct {
		Type string `json:"type"`
	}{typ})
	if err != nil {
		panic(err)
	}
	return line
}

// Call is one execution sent to a shim, local or on Cloudflare.
type Call struct {
	Client *http.Client
	Base   string // the shim's URL, without a trailing slash
	// Channels, if set, are the local process's channels: the execution
	// goes on one of them rather than as a /run call.
	Channels *Channels
	Secret   string
	MaxEvent int // bound of one line of the stream
	// Heard, if set, is also given the time of every line: the process's
	// own record that its event loop runs.
	Heard *atomic.Int64
	// Answered, if set, is called once the shim has answered (its
	// response's headers arrived): the guest's isolate is made and its
	// first turn has run, so what is left is waiting or streaming.
	Answered func()

	lastLine atomic.Int64 // unix nanoseconds of the last line the shim sent
	net      atomic.Bool  // the guest attempted an outbound request
}

// LostError is a connection to the shim that failed before the result.
// Answered says whether the shim had sent its response headers.
type LostError struct {
	Err      error
	Answered bool
}

func (e *LostError) Error() string { return "lost the shim: " + e.Err.Error() }
func (e *LostError) Unwrap() error { return e.Err }

// Run posts job to the shim, signed, and relays its events to emit: start
// when the shim answers, each log, and the result. It returns nil once the
// result is emitted; a *RejectedError when the runtime refused the job; a
// *LostError when the connection failed first (the caller decides what that
// means); or emit's error.
func (c *Call) Run(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	c.lastLine.Store(time.Now().UnixNano())
	body, err := encodeJob(job)
	if err != nil {
		return err
	}
	status, answer, err := c.exchange(ctx, job, body)
	if errors.Is(err, ErrSecretMismatch) {
		return err
	} else if err != nil {
		return &LostError{Err: err}
	}
	defer answer.Close()
	if c.Answered != nil {
		c.Answered()
	}

	switch status {
	case http.StatusOK:
	case http.StatusBadRequest:
		var rejected execution.RejectedError
		data, _ := io.ReadAll(io.LimitReader(answer, 64<<10))
		if err := json.Unmarshal(data, &rejected); err != nil || rejected.Message == "" {
			return fmt.Errorf("runtime answered 400: %s", bytes.TrimSpace(data))
		}
		return &rejected
	case http.StatusUnauthorized:
		data, _ := io.ReadAll(io.LimitReader(answer, 4<<10))
		return fmt.Errorf("%w: %s", ErrSecretMismatch, bytes.TrimSpace(data))
	default:
		data, _ := io.ReadAll(io.LimitReader(answer, 4<<10))
		return &LostError{Err: fmt.Errorf("runtime answered %d %s: %s", status, http.StatusText(status), bytes.TrimSpace(data))}
	}

	if err := emit(execution.Event{Type: execution.EventStart, ID: job.ID}); err != nil {
		return err
	}
	buf := scanBuffers.Get().(*[]byte)
	defer scanBuffers.Put(buf) // no event holds on to it: each is decoded into its own values
	scanner := bufio.NewScanner(answer)
	scanner.Buffer((*buf)[:0], c.MaxEvent)
	for scanner.Scan() {
		now := time.Now().UnixNano()
		c.lastLine.Store(now)
		if c.Heard != nil {
			c.Heard.Store(now)
		}
		line := scanner.Bytes()
		if bytes.Equal(line, pingLine) {
			continue // the shim checking that the gateway is still there
		}
		if bytes.Equal(line, netLine) {
			c.net.Store(true)
			continue
		}
		var ev execution.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return emit(rejectEvent(err))
		} else if err := checkEvent(&ev); err != nil {
			return emit(rejectEvent(err))
		}
		if ev.Type == execution.EventResult && ev.Result == nil {
			ev.Result = &execution.Result{}
		}
		if err := emit(ev); err != nil {
			return err
		}
		if ev.Type == execution.EventResult {
			return nil
		}
	}
	if errors.Is(scanner.Err(), bufio.ErrTooLong) {
		return emit(execution.Failure(execution.CodeOutputLimit, "an output event exceeded %d bytes", c.MaxEvent))
	}
	err = scanner.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return &LostError{Err: err, Answered: true}
}

// exchange sends the job and returns the shim's answer: its status and its
// body. With Channels it goes on the process's channel; else, or when no
// channel takes it, as a signed POST of /run.
func (c *Call) exchange(ctx context.Context, job *execution.Job, body []byte) (int, io.ReadCloser, error) {
	if c.Channels != nil {
		ch, err := c.Channels.take(ctx, job.ReuseKey == "")
		if err == nil {
			s, err := ch.start(ctx, body)
			if err != nil {
				return 0, nil, err
			}
			status, err := s.head()
			if err != nil {
				s.Close()
				return 0, nil, err
			}
			return status, s, nil
		}
		if errors.Is(err, ErrSecretMismatch) {
			return 0, nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/run", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	Sign(req, body, c.Secret, time.Now())
	resp, err := c.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, resp.Body, nil
}

// scanBuffers holds the buffers that Run reads the shim's lines into (a new
// one per execution would be most of the bytes the gateway allocates for
// it). An execution holds its buffer while it waits, and thousands may
// wait at once, so they are small: a line longer than one grows a buffer
// of the scanner's own.
var scanBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, scanBufferBytes)
	return &b
}}

// scanBufferBytes is the size of a pooled line buffer: the pings and most
// log lines fit.
const scanBufferBytes = 4 << 10

// encodeJob encodes job for the shim, which refuses a body over
// MaxJobBytes before reading it: a job that large is refused here already.
// HTML characters stay as they are (json.Marshal would make each of <, >
// and & six bytes).
func encodeJob(job *execution.Job) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(job); err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	if buf.Len() > MaxJobBytes {
		return nil, &execution.RejectedError{Message: fmt.Sprintf("the execution takes %d bytes once prepared for the runtime (compiled, with its env), more than the %d it accepts", buf.Len(), MaxJobBytes)}
	}
	return buf.Bytes(), nil
}

// SilentFor says how long the shim has sent nothing.
func (c *Call) SilentFor() time.Duration {
	return time.Since(time.Unix(0, c.lastLine.Load()))
}

// Net reports whether the guest attempted an outbound request: from then
// on the execution has touched the network and is never run again behind
// the caller's back.
func (c *Call) Net() bool { return c.net.Load() }

// ErrSecretMismatch means the shim refused the gateway's signature: the two
// do not share the same secret.
var ErrSecretMismatch = errors.New("the shim refused the gateway's signature (its SHIM_SECRET differs from the gateway's)")
