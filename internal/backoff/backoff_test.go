package backoff_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/backoff"
)

const ms = time.Millisecond

func TestDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       backoff.Policy
		attempt int
		want    time.Duration
	}{
		{"first is Min", backoff.Policy{Min: 50 * ms, Max: 5 * time.Second}, 0, 50 * ms},
		{"doubles", backoff.Policy{Min: 50 * ms, Max: 5 * time.Second}, 1, 100 * ms},
		{"doubles again", backoff.Policy{Min: 50 * ms, Max: 5 * time.Second}, 3, 400 * ms},
		{"reaches Max", backoff.Policy{Min: 100 * ms, Max: 5 * time.Second}, 6, 5 * time.Second},
		{"stays at Max", backoff.Policy{Min: 100 * ms, Max: 5 * time.Second}, 7, 5 * time.Second},
		{"huge attempt does not overflow", backoff.Policy{Min: 100 * ms, Max: 5 * time.Second}, math.MaxInt, 5 * time.Second},
		{"Max below Min means Min", backoff.Policy{Min: 50 * ms}, 4, 50 * ms},
		{"zero policy", backoff.Policy{}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.Delay(tt.attempt); got != tt.want {
				t.Errorf("%+v.Delay(%d) = %v, want %v", tt.p, tt.attempt, got, tt.want)
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Min: 100 * ms, Max: 5 * time.Second, Jitter: true}
	for _, tt := range []struct {
		attempt  int
		low, top time.Duration // the delay is in [low, top)
	}{{0, 50 * ms, 100 * ms}, {2, 200 * ms, 400 * ms}, {9, 2500 * ms, 5 * time.Second}} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Delay(tt.attempt)
			if d < tt.low || d >= tt.top {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v)", tt.attempt, d, tt.low, tt.top)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d) gave %d distinct values in 200 draws, want jitter", tt.attempt, len(seen))
		}
	}
}

// never is a clock hook whose wait never ends; it reports each wait on started.
func never(started chan<- time.Duration) func(time.Duration) <-chan time.Time {
	return func(d time.Duration) <-chan time.Time {
		started <- d
		return make(chan time.Time)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	fired := func(time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		after  func(time.Duration) <-chan time.Time
		d      time.Duration
		want   error
		starts bool // whether the clock is asked for a wait
	}{
		{"the wait passes", context.Background(), fired, time.Hour, nil, true},
		{"no wait", context.Background(), fired, 0, nil, false},
		{"negative wait", context.Background(), fired, -time.Second, nil, false},
		{"context ended before", cancelled, fired, time.Hour, context.Canceled, false},
		{"context ended before, no wait", cancelled, fired, 0, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			started := false
			p := backoff.Policy{After: func(d time.Duration) <-chan time.Time {
				started = true
				return tt.after(d)
			}}
			if err := p.Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("Sleep(%v) = %v, want %v", tt.d, err, tt.want)
			}
			if started != tt.starts {
				t.Errorf("Sleep(%v) asked the clock: %v, want %v", tt.d, started, tt.starts)
			}
		})
	}
}

// TestWaitEndsWithContext cancels the context while Wait waits on a clock
// that never fires: Wait must return the context's error.
func TestWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	started := make(chan time.Duration, 1)
	p := backoff.Policy{Min: 50 * ms, Max: time.Second, After: never(started)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Wait(ctx, 2) }()
	if d := <-started; d != 200*ms {
		t.Errorf("Wait(ctx, 2) waited %v, want 200ms", d)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(ctx, 2) = %v, want context.Canceled", err)
	}
}

// TestSleepRealClock waits on the real clock: it returns nil once d passed
// (a lower bound, which a loaded machine cannot break; no upper one).
func TestSleepRealClock(t *testing.T) {
	t.Parallel()
	start := time.Now()
	if err := (backoff.Policy{}).Sleep(context.Background(), 5*ms); err != nil {
		t.Fatalf("Sleep(5ms) = %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed < 5*ms {
		t.Errorf("Sleep(5ms) returned after %v, want at least 5ms", elapsed)
	}
}
