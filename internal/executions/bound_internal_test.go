package executions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/store"
)

// usageCounter counts the store's Usage readings.
type usageCounter struct {
	store.Store
	reads int
}

func (c *usageCounter) Usage(ctx context.Context, caller string) (int64, error) {
	c.reads++
	return c.Store.Usage(ctx, caller)
}

// TestBoundReadsUsageWhenItCouldBePast: the writer reads a caller's stored
// bytes after a batch only when it could be past its bound (its last
// reading plus what was written since is past it) or the last reading is
// older than usageRecheck (another gateway may have written); and a caller
// past its bound still loses its oldest records at once.
func TestBoundReadsUsageWhenItCouldBePast(t *testing.T) {
	t.Parallel()
	const limit = 10_000
	c := &usageCounter{Store: openStore(t)}
	h := newWriter(c, zerolog.Nop(), metrics.New(), newBroker(), RecordOptions{MaxStoredBytesPerKey: limit}, func(*store.Execution) {})
	// record stores an ended record of alice's whose result takes n bytes.
	record := func(id string, n int) {
		now := time.Now()
		result := []byte(`"` + strings.Repeat("x", n-2) + `"`)
		_, err := c.Store.Apply(t.Context(), []store.Write{{
			Create: &store.Execution{ID: id, Caller: "alice", Status: store.Running, Owner: "gw", CreatedAt: now, StartedAt: now},
			Finish: &store.Ending{Owner: "gw", Status: store.Finished, ResultJSON: result, At: now},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	record("ex_1", 4000)
	steps := []struct {
		name  string
		grew  int64
		stale bool // the last reading is older than usageRecheck
		reads int  // readings the batch makes
	}{
		{"first batch of the caller", 4000, false, 1},
		{"well under the bound", 1000, false, 0},
		{"under it still", 4000, false, 0},
		{"could be past it", 2000, false, 1},
		{"under it, but the reading is stale", 10, true, 1},
		{"under it again", 10, false, 0},
	}
	for _, step := range steps {
		if step.stale {
			u := h.usage["alice"]
			u.at = u.at.Add(-usageRecheck)
			h.usage["alice"] = u
		}
		before := c.reads
		h.bound(t.Context(), map[string]int64{"alice": step.grew})
		if got := c.reads - before; got != step.reads {
			t.Errorf("%s: bound read the usage %d times, want %d", step.name, got, step.reads)
		}
	}

	// Past the bound (written behind the writer's back, as another gateway
	// would): the next reading finds it, and the oldest records go.
	for _, id := range []string{"ex_2", "ex_3", "ex_4"} {
		record(id, 4000)
	}
	h.bound(t.Context(), map[string]int64{"alice": limit})
	used, err := c.Store.Usage(t.Context(), "alice")
	if err != nil || used > limit {
		t.Errorf("alice's usage after bound = %d, %v; want at most %d", used, err, limit)
	}
	if _, err := c.Store.Get(t.Context(), "alice", "ex_1"); err == nil {
		t.Errorf("alice's oldest record kept past her bound, want evicted")
	}
}
