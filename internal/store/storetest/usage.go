package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// testUsage: a caller's usage is the bytes of its records' results and
// events, kept exact through every write; Evict deletes its oldest ended
// records down to a bound, never a running one, one whose callback is still
// pending or another caller's; Purge takes what it deletes off the usage.
func testUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	usage := func(caller string) int64 {
		t.Helper()
		n, err := s.Usage(ctx, caller)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := usage("a"); n != 0 {
		t.Fatalf("Usage(no records) = %d, want 0", n)
	}
	logs := func(seq int64, n int) []store.Event {
		var evs []store.Event
		for i := range n {
			evs = append(evs, store.Event{Seq: seq + int64(i), Type: execution.EventLog, Data: json.RawMessage(`{"type":"log","message":"` + strings.Repeat("x", 90) + `"}`)})
		}
		return evs
	}
	want := int64(0)
	// Ten records of a, each with events and a result, written the ways
	// the gateway writes them: created ended in one write (sync), created
	// running then finished (sync, long), queued then claimed and finished.
	for i := range 10 {
		id := fmt.Sprintf("ex_u%d", i)
		res := &execution.Result{ID: id, Success: true, Stdout: strings.Repeat("o", 100*i)}
		body, _ := json.Marshal(res)
		evs := logs(1, 3)
		switch i % 3 {
		case 0:
			errs, err := s.Apply(ctx, []store.Write{{Create: &store.Execution{ID: id, Caller: "a", Status: store.Running, Owner: "gw", CreatedAt: t0},
				Events: evs, Finish: &store.Ending{Owner: "gw", Status: store.Finished, Result: res, At: t0.Add(time.Duration(i) * time.Second)}}})
			if err != nil || errs[0] != nil {
				t.Fatalf("Apply(create ended) = %v, %v", errs, err)
			}
		case 1:
			create(t, s, store.Execution{ID: id, Caller: "a", Status: store.Running, Owner: "gw"})
			if err := s.AppendEvents(ctx, id, evs); err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(ctx, id, "gw", store.Finished, res, nil, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		default:
			create(t, s, store.Execution{ID: id, Caller: "a", Async: true, Request: []byte(`{"code":"` + strings.Repeat("r", 500) + `"}`)})
			if c, err := s.Claim(ctx, "gw", t0, store.Limits{}); err != nil || c.ID != id {
				t.Fatalf("Claim = %v, %v", c, err)
			}
			if err := s.AppendEvents(ctx, id, evs); err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(ctx, id, "gw", store.Finished, res, nil, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		for _, ev := range evs {
			want += int64(len(ev.Data))
		}
		want += int64(len(body))
	}
	// Runs of log events are stored as one row (a JSON array of them).
	if got := usage("a"); got < want || got > want+10*4 {
		t.Errorf("Usage(a) = %d, want the bytes of its results and events, about %d", got, want)
	}
	create(t, s, store.Execution{ID: "ex_b", Caller: "b", Status: store.Running, Owner: "gw"})
	if err := s.AppendEvents(ctx, "ex_b", logs(1, 5)); err != nil {
		t.Fatal(err)
	}
	b := usage("b")
	if b < 5*90 {
		t.Errorf("Usage(b) = %d, want at least its events' %d", b, 5*90)
	}
	// Still running, and pending a callback: neither is evicted.
	create(t, s, store.Execution{ID: "ex_run", Caller: "a", Status: store.Running, Owner: "gw"})
	if err := s.AppendEvents(ctx, "ex_run", logs(1, 2)); err != nil {
		t.Fatal(err)
	}
	create(t, s, store.Execution{ID: "ex_cb", Caller: "a", Status: store.Running, Owner: "gw", CallbackURL: "https://example.com/cb"})
	if err := s.Finish(ctx, "ex_cb", "gw", store.Finished, &execution.Result{ID: "ex_cb"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	before := usage("a")
	keep := before / 2
	n, err := s.Evict(ctx, "a", keep)
	if err != nil || n == 0 {
		t.Fatalf("Evict(a, %d) = %d, %v; want some records deleted", keep, n, err)
	}
	if got := usage("a"); got > keep {
		t.Errorf("Usage(a) after Evict(%d) = %d, want at most that", keep, got)
	}
	// The oldest went first; the newest ended ones, the running one and the
	// pending callback stayed.
	for i := range n {
		if _, err := s.Head(ctx, "a", fmt.Sprintf("ex_u%d", i)); err == nil {
			t.Errorf("ex_u%d survived Evict, which deleted %d records", i, n)
		}
		if evs, _ := s.Events(ctx, fmt.Sprintf("ex_u%d", i), 0, 10); len(evs) != 0 {
			t.Errorf("ex_u%d's events survived Evict", i)
		}
	}
	for _, id := range []string{"ex_u9", "ex_run", "ex_cb"} {
		if _, err := s.Head(ctx, "a", id); err != nil {
			t.Errorf("%s after Evict: %v, want kept", id, err)
		}
	}
	if got := usage("b"); got != b {
		t.Errorf("Usage(b) after Evict(a) = %d, want %d", got, b)
	}
	// Evicting down to nothing stops at what may not go.
	if _, err := s.Evict(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx, "a", "ex_run"); err != nil {
		t.Errorf("ex_run after Evict(0): %v, want kept (running)", err)
	}
	if got := usage("a"); got <= 0 {
		t.Errorf("Usage(a) after Evict(0) = %d, want the running record's events", got)
	}
	// The newest record is kept even when it alone is over the bound.
	for _, id := range []string{"ex_c1", "ex_c2"} {
		create(t, s, store.Execution{ID: id, Caller: "c", Status: store.Running, Owner: "gw"})
		if err := s.Finish(ctx, id, "gw", store.Finished, &execution.Result{ID: id, Stdout: strings.Repeat("c", 1000)}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Evict(ctx, "c", 10); err != nil || n != 1 {
		t.Errorf("Evict(c, 10) = %d, %v; want the older of its two records deleted", n, err)
	}
	if _, err := s.Head(ctx, "c", "ex_c2"); err != nil {
		t.Errorf("c's newest record after Evict: %v, want kept", err)
	}
	// Purge takes what it deletes off the usage.
	if err := s.Finish(ctx, "ex_b", "gw", store.Finished, &execution.Result{ID: "ex_b"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := usage("b"); got != 0 {
		t.Errorf("Usage(b) after Purge = %d, want 0", got)
	}
}
