package cloudflare

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// refusingRelay returns a relay whose shim URL refuses connections (a
// loopback port nobody listens on any more).
func refusingRelay(t *testing.T) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	r, err := New(Config{URL: url, Secret: strings.Repeat("s", 32)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func refusedJob() *execution.Job {
	return &execution.Job{ID: "ex_refused", MainModule: "main.js",
		Modules: map[string]string{"main.js": "export default {}"}, Timeout: time.Minute}
}

func noEmit(execution.Event) error {
	return errors.New("emit called for a call that never reached the shim")
}

// TestExecuteRedialsRefusedConnection: a refused connection is tried twice
// more, after the redial backoff's 50ms and 100ms, then the shim is
// unavailable.
func TestExecuteRedialsRefusedConnection(t *testing.T) {
	t.Parallel()
	r := refusingRelay(t)
	var waits []time.Duration
	r.redial.After = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		fired := make(chan time.Time, 1)
		fired <- time.Time{}
		return fired
	}
	err := r.Execute(context.Background(), refusedJob(), noEmit)
	if !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Execute() = %v, want ErrUnavailable", err)
	}
	if want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("Execute() waited %v between calls, want %v", waits, want)
	}
}

// TestExecuteStopsWaitingWhenContextEnds cancels the caller's context while
// Execute waits to call the shim again, on a clock that never fires:
// Execute must return the context's error without calling again.
func TestExecuteStopsWaitingWhenContextEnds(t *testing.T) {
	t.Parallel()
	r := refusingRelay(t)
	waiting := make(chan struct{}, 3)
	r.redial.After = func(time.Duration) <-chan time.Time {
		waiting <- struct{}{}
		return make(chan time.Time) // never fires
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Execute(ctx, refusedJob(), noEmit) }()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("Execute() = %v before waiting to call again, want a wait", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Execute() never waited to call the refusing shim again")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Execute() = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Execute() still waiting 30s after its context was cancelled")
	}
	if n := len(waiting); n != 0 {
		t.Errorf("Execute() waited %d more times after its context was cancelled, want 0", n)
	}
}
