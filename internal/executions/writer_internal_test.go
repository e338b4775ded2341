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

// TestStoreNowAppliesInQueueOrder: a write its sender waits for (a
// synchronous execution's end) is applied on the sender's goroutine when
// no one else applies writes, after every write queued before it (here a
// running record's creation and events: its end before them would find no
// record to end); the writes queued after it are still the writer's.
func TestStoreNowAppliesInQueueOrder(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	h := newWriter(st, zerolog.Nop(), metrics.New(), newBroker(), RecordOptions{}, func(*store.Execution) {})
	now := time.Now()
	rec := &store.Execution{ID: "ex_order", Caller: "alice", Status: store.Running, Owner: "gw", CreatedAt: now, StartedAt: now}
	event := func(seq int64, typ string) []store.Event {
		return []store.Event{{Seq: seq, Type: typ, Data: []byte(`{"type":"` + typ + `"}`)}}
	}
	h.enqueue(write{create: rec, id: rec.ID, caller: "alice", events: event(1, "start")})
	h.enqueue(write{id: rec.ID, caller: "alice", events: event(2, "log")})
	end := write{id: rec.ID, caller: "alice", stored: make(chan error, 1), end: &ending{
		owner: "gw", status: store.Finished, resultJSON: []byte(`{"success":true}`), last: event(3, "result"), record: rec, at: now}}
	// The writer's goroutine is not running: storeNow applies them itself.
	if err := h.storeNow(end); err != nil {
		t.Fatalf("storeNow = %v", err)
	}
	got, err := st.Get(t.Context(), "alice", rec.ID)
	if err != nil || got.Status != store.Finished {
		t.Fatalf("record after storeNow = %+v, %v; want finished", got, err)
	}
	evs, err := st.Events(t.Context(), rec.ID, 0, 10)
	if err != nil || len(evs) != 3 || evs[0].Type != "start" || evs[1].Type != "log" || evs[2].Type != "result" {
		t.Errorf("events after storeNow = %v, %v; want start, log, result", evs, err)
	}

	go h.run()
	later := &store.Execution{ID: "ex_later", Caller: "alice", Status: store.Running, Owner: "gw", CreatedAt: now, StartedAt: now}
	h.enqueue(write{create: later, id: later.ID, caller: "alice", events: event(1, "start")})
	h.flush()
	if _, err := st.Get(t.Context(), "alice", later.ID); err != nil {
		t.Errorf("a write queued after storeNow: %v, want it stored by the writer", err)
	}
	h.close()
}
