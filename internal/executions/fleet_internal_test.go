package executions

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// countingStore counts the store's CountStart calls: what a key's
// requests cost the database.
type countingStore struct {
	store.Store
	starts atomic.Int32
}

func (c *countingStore) CountStart(ctx context.Context, caller string, now time.Time, window time.Duration, limit int) error {
	c.starts.Add(1)
	return c.Store.CountStart(ctx, caller, now, window, limit)
}

// TestFleetRefusalHold: a key flooding past its rate is refused without a
// statement per request: after the store's refusal, this gateway refuses
// the key's executions itself for refusalHold (at most a tenth of the
// window), each with the quota and a Retry-After; then asks the store
// again. Another key is not held.
func TestFleetRefusalHold(t *testing.T) {
	st := openStore(t)
	cs := &countingStore{Store: st}
	f := &fleet{st: cs, owner: "gw", log: zerolog.Nop()}
	const limit, flood = 3, 200
	window := time.Minute
	now := time.Now().Truncate(window).Add(time.Second)
	for i := range limit {
		if err := f.start(t.Context(), "a", limit, window, now); err != nil {
			t.Fatalf("start %d = %v", i, err)
		}
	}
	for i := range flood {
		err := f.start(t.Context(), "a", limit, window, now.Add(time.Duration(i)*time.Millisecond))
		var p *execution.Problem
		if !errors.As(err, &p) || p.Code != execution.ProblemRateLimited || p.Quota != limit || p.RetryAfter < 1 {
			t.Fatalf("start past the limit %d = %v, want rate_limited with its quota and Retry-After", i, err)
		}
	}
	if n := cs.starts.Load(); n != limit+1 {
		t.Errorf("%d starts and %d refusals within the hold asked the store %d times, want %d", limit, flood, n, limit+1)
	}
	if err := f.start(t.Context(), "b", limit, window, now); err != nil {
		t.Errorf("another key's start = %v; a's refusal must not hold it", err)
	}
	// Past the hold the store is asked again (and still refuses: a's
	// window is full).
	before := cs.starts.Load()
	if err := f.start(t.Context(), "a", limit, window, now.Add(refusalHold)); err == nil {
		t.Error("start past the hold = nil, want rate_limited (the window is still full)")
	}
	if cs.starts.Load() != before+1 {
		t.Error("a start past the hold did not ask the store")
	}
	// A short window holds a tenth of it.
	for range 2 {
		_ = f.start(t.Context(), "c", 1, time.Second, now)
	}
	if err := f.start(t.Context(), "c", 1, time.Second, now.Add(150*time.Millisecond)); cs.starts.Load() != before+4 {
		t.Errorf("a start past a tenth of a 1 s window (%v) did not ask the store", err)
	}
}
