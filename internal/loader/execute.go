package loader

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

var errTimeout = errors.New("execution timed out")

// pingLine is what the shim sends while a guest is silent.
var pingLine = []byte(`{"type":"ping"}`)

// Execute runs job on the least-loaded healthy runtime process.
func (l *Local) Execute(ctx context.Context, job *Job, emit func(execution.Event) error) error {
	p, err := l.acquire(ctx)
	if err != nil {
		return err
	}
	defer l.release(p)
	l.active.add(job.Secrets)
	defer l.active.remove(job.Secrets)
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, job.Timeout, errTimeout)
	defer cancel()
	// The shim sends a line at least every 100 ms while the process runs;
	// silence at the deadline means the process is blocked.
	var lastLine atomic.Int64
	lastLine.Store(time.Now().UnixNano())
	lost := func(err error) error {
		if errors.Is(context.Cause(ctx), errTimeout) && time.Since(time.Unix(0, lastLine.Load())) > l.cfg.ProbeInterval {
			l.markOverdue(p)
		}
		return l.lost(parent, ctx, p, job, emit, err)
	}

	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	Sign(req, body, l.secret, time.Now())
	resp, err := l.client.Do(req)
	if err != nil {
		return lost(err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest:
		var rejected RejectedError
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err := json.Unmarshal(data, &rejected); err != nil || rejected.Message == "" {
			return fmt.Errorf("runtime answered 400: %s", bytes.TrimSpace(data))
		}
		return &rejected
	default:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("runtime answered %s: %s", resp.Status, bytes.TrimSpace(data))
	}

	if err := emit(execution.Event{Type: execution.EventStart, ID: job.ID}); err != nil {
		return err
	}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 0, 64<<10), l.cfg.MaxEventBytes)
	for scanner.Scan() {
		lastLine.Store(time.Now().UnixNano())
		line := scanner.Bytes()
		if bytes.Equal(line, pingLine) {
			continue // the shim checking that the gateway is still there
		}
		var ev execution.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return emit(failure(execution.CodeRuntimeCrashed, "malformed event from the runtime: %v", err))
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
		return emit(failure(execution.CodeOutputLimit, "an output event exceeded %d bytes", l.cfg.MaxEventBytes))
	}
	err = scanner.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return lost(err)
}

// lost decides what an execution whose connection to the runtime failed
// before its result ended with.
func (l *Local) lost(parent, ctx context.Context, p *process, job *Job, emit func(execution.Event) error, err error) error {
	switch {
	case errors.Is(context.Cause(ctx), errTimeout):
		return emit(failure(execution.CodeTimeout, "execution exceeded its timeout of %v", job.Timeout))
	case parent.Err() != nil:
		return parent.Err()
	case p.hasExited(time.Second):
		l.log.Warn().Str("id", job.ID).Int("pid", p.pid()).Msg("runtime exited during an execution")
		if p.oom.Load() {
			if l.inflightOf(p) == 1 {
				return emit(failure(execution.CodeMemoryLimit, "the execution ran out of memory (V8 heap limit); its runtime process was replaced"))
			}
			return emit(failure(execution.CodeRuntimeCrashed, "the runtime ran out of memory, maybe because of another execution on it; safe to retry"))
		}
		if p.killed.Load() {
			return emit(failure(execution.CodeRuntimeCrashed, "the runtime was replaced because another execution on it blocked past its deadline; safe to retry"))
		}
		return emit(failure(execution.CodeRuntimeCrashed, "%v (%v); safe to retry", errProcessGone, p.err))
	default:
		l.log.Warn().Str("id", job.ID).Err(err).Msg("lost connection to the runtime")
		return emit(failure(execution.CodeRuntimeCrashed, "lost connection to the runtime; safe to retry"))
	}
}
