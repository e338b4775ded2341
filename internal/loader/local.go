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
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// LocalConfig configures the local backend.
type LocalConfig struct {
	Workerd      string        // path of the workerd binary
	StartTimeout time.Duration // how long a starting process has to answer
	// MaxEventBytes bounds one line of the shim's event stream.
	MaxEventBytes int
}

// Local runs executions on a workerd process on this machine, started and
// supervised by the gateway: if the process exits, it is started again.
type Local struct {
	cfg    LocalConfig
	log    zerolog.Logger
	client *http.Client
	dir    string
	config string

	mu   sync.Mutex
	proc *process // nil while none is running and healthy

	stop context.CancelFunc
	done chan struct{}
}

const (
	minRestartDelay = 50 * time.Millisecond
	maxRestartDelay = 5 * time.Second
	stopGrace       = 2 * time.Second
)

// NewLocal writes the shim and its workerd config to a temporary folder and
// starts supervising a workerd process. It returns at once; Ready says when
// the process answers.
func NewLocal(cfg LocalConfig, log zerolog.Logger) (*Local, error) {
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = 4 << 20
	}
	dir, err := os.MkdirTemp("", "gateway-workerd-")
	if err != nil {
		return nil, err
	}
	config, err := writeConfig(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write workerd config: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Local{
		cfg:    cfg,
		log:    log.With().Str("component", "loader").Logger(),
		client: &http.Client{Transport: newTransport()},
		dir:    dir,
		config: config,
		stop:   cancel,
		done:   make(chan struct{}),
	}
	go l.supervise(ctx)
	return l, nil
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // the runtime is on loopback; never go through a proxy
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
}

// supervise keeps one workerd process running until ctx ends.
func (l *Local) supervise(ctx context.Context) {
	defer close(l.done)
	delay := minRestartDelay
	for {
		p, err := startProcess(ctx, l.cfg.Workerd, l.config, l.client, l.cfg.StartTimeout, l.log)
		if err == nil {
			l.log.Info().Int("pid", p.pid()).Str("url", p.url).Msg("runtime started")
			started := time.Now()
			l.setProcess(p)
			select {
			case <-p.exited:
			case <-ctx.Done():
			}
			l.setProcess(nil)
			if ctx.Err() != nil {
				p.stop(stopGrace)
				return
			}
			l.log.Error().Int("pid", p.pid()).Str("exit", fmt.Sprint(p.err)).Msg("runtime exited; restarting")
			if time.Since(started) > 10*time.Second {
				delay = minRestartDelay
			}
		} else if ctx.Err() == nil {
			l.log.Error().Err(err).Dur("retry_in", delay).Msg("runtime failed to start")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRestartDelay)
	}
}

func (l *Local) setProcess(p *process) {
	l.mu.Lock()
	l.proc = p
	l.mu.Unlock()
}

func (l *Local) process() *process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.proc
}

// PID returns the process id of the running workerd, or 0 if none is.
func (l *Local) PID() int {
	if p := l.process(); p != nil {
		return p.pid()
	}
	return 0
}

// Ready reports whether a runtime process is running and answered.
func (l *Local) Ready(ctx context.Context) error {
	if l.process() == nil {
		return ErrUnavailable
	}
	return nil
}

// Close stops the runtime process and removes the temporary files.
func (l *Local) Close() error {
	l.stop()
	<-l.done
	l.client.CloseIdleConnections()
	return os.RemoveAll(l.dir)
}

var errTimeout = errors.New("execution timed out")

// pingLine is what the shim sends while a guest is silent.
var pingLine = []byte(`{"type":"ping"}`)

// Execute runs job on the current runtime process.
func (l *Local) Execute(ctx context.Context, job *Job, emit func(execution.Event) error) error {
	p := l.process()
	if p == nil {
		return ErrUnavailable
	}
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, job.Timeout, errTimeout)
	defer cancel()

	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return l.lost(parent, ctx, p, job, emit, err)
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
	return l.lost(parent, ctx, p, job, emit, err)
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
		return emit(failure(execution.CodeRuntimeCrashed, "%v (%v); safe to retry", errProcessGone, p.err))
	default:
		l.log.Warn().Str("id", job.ID).Err(err).Msg("lost connection to the runtime")
		return emit(failure(execution.CodeRuntimeCrashed, "lost connection to the runtime; safe to retry"))
	}
}
