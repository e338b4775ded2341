package testwait_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/testwait"
)

func TestUntilHolds(t *testing.T) {
	var n atomic.Int32
	if !testwait.Until(5*time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("Until = false for a condition that holds at the third look")
	}
	if n.Load() != 3 {
		t.Errorf("cond called %d times, want 3 (no look after it held)", n.Load())
	}
}

func TestUntilGivesUp(t *testing.T) {
	start := time.Now()
	if testwait.Until(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until = true for a condition that never holds")
	}
	// It gives up only once the timeout has passed (a lower bound, which a
	// loaded machine cannot break; no upper one).
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("Until gave up after %v, want no sooner than its 50ms", took)
	}
}
