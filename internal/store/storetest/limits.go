package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// testCountStart: a caller's executions per window are counted to its
// limit and no further, other callers apart; the window before counts for
// the share of it the last window's length still covers.
func testCountStart(t *testing.T, s store.Store) {
	ctx := t.Context()
	const limit = 6
	w := time.Minute
	start := t0.Truncate(w)
	count := func(caller string, at time.Time) error { return s.CountStart(ctx, caller, at, w, limit) }
	for i := range limit {
		if err := count("a", start.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("CountStart(a, %d) = %v", i, err)
		}
	}
	if err := count("a", start.Add(50*time.Second)); !errors.Is(err, store.ErrLimited) {
		t.Errorf("CountStart(a past its limit) = %v, want ErrLimited", err)
	}
	if err := count("b", start.Add(50*time.Second)); err != nil {
		t.Errorf("CountStart(b) = %v; another caller's count must not limit b", err)
	}
	// A third into the next window, the 6 of the window before weigh 4:
	// two more.
	next := start.Add(w + w/3)
	for i := range 2 {
		if err := count("a", next); err != nil {
			t.Errorf("CountStart(a, next window, %d) = %v, want nil", i, err)
		}
	}
	if err := count("a", next); !errors.Is(err, store.ErrLimited) {
		t.Errorf("CountStart(a, next window, 3rd) = %v, want ErrLimited (4 of the window before + 2)", err)
	}
	// Two windows on, the old ones weigh nothing.
	if err := count("a", start.Add(3*w)); err != nil {
		t.Errorf("CountStart(a, two windows on) = %v, want nil", err)
	}
	if err := s.PurgeRates(ctx, start.Add(3*w)); err != nil {
		t.Fatalf("PurgeRates = %v", err)
	}
	for i := range limit - 1 {
		if err := count("a", start.Add(3*w)); err != nil {
			t.Errorf("CountStart(a, after PurgeRates, %d) = %v; the current window must be kept", i, err)
		}
	}
	if err := count("a", start.Add(3*w)); !errors.Is(err, store.ErrLimited) {
		t.Errorf("CountStart(a, after PurgeRates, past its limit) = %v, want ErrLimited", err)
	}
}

// testCountStartConcurrent counts a burst of one caller's starts from many
// goroutines (as many gateways would): exactly its limit passes.
func testCountStartConcurrent(t *testing.T, s store.Store) {
	const burst, limit = 40, 7
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			err := s.CountStart(t.Context(), "a", t0, time.Hour, limit)
			switch {
			case err == nil:
				passed.Add(1)
			case !errors.Is(err, store.ErrLimited):
				t.Errorf("CountStart = %v", err)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != limit {
		t.Errorf("a burst of %d starts passed %d, want %d", burst, n, limit)
	}
}

// testHoldSlot: a caller holds slots up to its limit, with its queued
// executions running counted too; a freed slot, and the slots of a
// gateway that released its lease or whose lease expired, are free again.
func testHoldSlot(t *testing.T, s store.Store) {
	ctx := t.Context()
	const limit = 3
	for _, gw := range []string{"gw1", "gw2"} {
		if err := s.Lease(ctx, gw, t0.Add(10*time.Second), false); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, store.Execution{ID: "ex_q", Caller: "a", Async: true, Request: []byte(`{}`)})
	if _, err := s.Claim(ctx, "gw1", t0, store.Limits{}); err != nil {
		t.Fatal(err)
	}
	for i, gw := range []string{"gw1", "gw2"} {
		if err := s.HoldSlot(ctx, "a", fmt.Sprintf("ex_s%d", i), gw, limit); err != nil {
			t.Fatalf("HoldSlot(a, %d) = %v", i, err)
		}
	}
	if err := s.HoldSlot(ctx, "a", "ex_s9", "gw1", limit); !errors.Is(err, store.ErrLimited) {
		t.Errorf("HoldSlot(a with 2 slots and a queued one running) = %v, want ErrLimited", err)
	}
	if err := s.HoldSlot(ctx, "b", "ex_b", "gw1", 1); err != nil {
		t.Errorf("HoldSlot(b) = %v; a's slots must not limit b", err)
	}
	if err := s.FreeSlot(ctx, "ex_s0"); err != nil {
		t.Fatal(err)
	}
	if err := s.HoldSlot(ctx, "a", "ex_s2", "gw1", limit); err != nil {
		t.Errorf("HoldSlot(a after FreeSlot) = %v, want nil", err)
	}
	if err := s.Finish(ctx, "ex_q", "gw1", store.Finished, nil, nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.HoldSlot(ctx, "a", "ex_s3", "gw1", limit); err != nil {
		t.Errorf("HoldSlot(a after its queued one ended) = %v, want nil", err)
	}
	// a: ex_s1 on gw2, ex_s2 and ex_s3 on gw1. gw1 releases its lease.
	if err := s.Release(ctx, "gw1"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.HoldSlot(ctx, "a", fmt.Sprintf("ex_r%d", i), "gw3", limit); err != nil {
			t.Errorf("HoldSlot(a after gw1 released, %d) = %v, want nil", i, err)
		}
	}
	if err := s.HoldSlot(ctx, "a", "ex_r2", "gw3", limit); !errors.Is(err, store.ErrLimited) {
		t.Errorf("HoldSlot(a, 3 held) = %v, want ErrLimited", err)
	}
	// gw2's lease expires; gw3 never held one: Recover frees both.
	if _, err := s.Recover(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for i := range limit {
		if err := s.HoldSlot(ctx, "a", fmt.Sprintf("ex_x%d", i), "gw4", limit); err != nil {
			t.Errorf("HoldSlot(a after Recover, %d) = %v, want nil", i, err)
		}
	}
}

// testHoldSlotConcurrent takes one caller's slots from many goroutines (as
// many gateways would) while another claims its queued executions: the
// slots and the claims together stay within its limit.
func testHoldSlotConcurrent(t *testing.T, s store.Store) {
	const burst, limit = 30, 5
	for i := range burst {
		create(t, s, store.Execution{ID: fmt.Sprintf("ex_q%02d", i), Caller: "a", Async: true, Request: []byte(`{}`)})
	}
	var held, claimed atomic.Int32
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			err := s.HoldSlot(t.Context(), "a", fmt.Sprintf("ex_s%02d", i), fmt.Sprintf("gw%d", i%3), limit)
			switch {
			case err == nil:
				held.Add(1)
			case !errors.Is(err, store.ErrLimited):
				t.Errorf("HoldSlot = %v", err)
			}
		})
		wg.Go(func() {
			_, err := s.Claim(t.Context(), fmt.Sprintf("gw%d", i%3), t0, store.Limits{Default: limit})
			switch {
			case err == nil:
				claimed.Add(1)
			case !errors.Is(err, store.ErrEmpty):
				t.Errorf("Claim = %v", err)
			}
		})
	}
	wg.Wait()
	if h, c := held.Load(), claimed.Load(); h+c != limit {
		t.Errorf("%d slots held and %d claimed, want %d in all", h, c, limit)
	}
}

// testClaimBusy: a caller's slots, and the executions its gateway counts
// itself (Busy), count against its limit in Claim.
func testClaimBusy(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 3 {
		create(t, s, store.Execution{ID: fmt.Sprintf("ex_a%d", i), Caller: "a", Async: true})
		create(t, s, store.Execution{ID: fmt.Sprintf("ex_b%d", i), Caller: "b", Async: true})
	}
	if err := s.HoldSlot(ctx, "a", "ex_sync", "gw0", 3); err != nil {
		t.Fatal(err)
	}
	lim := store.Limits{Default: 2, Busy: map[string]int{"b": 2}}
	var got []string
	for {
		e, err := s.Claim(ctx, "gw1", t0, lim)
		if errors.Is(err, store.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatalf("Claim = %v", err)
		}
		got = append(got, e.ID)
	}
	// a: 2 with its slot; b: none, its 2 running elsewhere.
	if fmt.Sprint(got) != "[ex_a0]" {
		t.Errorf("claimed %v, want [ex_a0]", got)
	}
}

// testHandBack: a running queued execution handed back by its owner is
// queued again with its request and its restart event, its run not
// counted; only its owner may hand it back, and only a queued one.
func testHandBack(t *testing.T, s store.Store) {
	ctx := t.Context()
	create(t, s, store.Execution{ID: "ex_h", Caller: "a", Async: true, Request: []byte(`{"code":"x"}`)})
	if _, err := s.Claim(ctx, "gw1", t0, store.Limits{}); err != nil {
		t.Fatal(err)
	}
	start := store.Event{Seq: 1, Type: execution.EventStart, Data: json.RawMessage(`{"type":"start","id":"ex_h"}`)}
	if err := s.AppendEvents(ctx, "ex_h", []store.Event{start}); err != nil {
		t.Fatal(err)
	}
	restart := store.Event{Seq: 2, Type: execution.EventRestart, Data: json.RawMessage(`{"type":"restart","reason":"runtime_crashed"}`)}
	if err := s.Finish(ctx, "ex_h", "gw2", store.Queued, nil, []store.Event{restart}, t0); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("Finish(Queued) by another gateway = %v, want ErrNotOwner", err)
	}
	if err := s.Finish(ctx, "ex_h", "gw1", store.Queued, nil, []store.Event{restart}, t0); err != nil {
		t.Fatalf("Finish(Queued) = %v", err)
	}
	e, err := s.Get(ctx, "a", "ex_h")
	if err != nil || e.Status != store.Queued || e.Owner != "" || e.Attempts != 0 || !e.StartedAt.IsZero() {
		t.Errorf("after the hand-back: %+v, %v; want queued, no owner, 0 attempts, not started", e, err)
	}
	evs, _ := s.Events(ctx, "ex_h", 0, 10)
	if len(evs) != 2 || evs[1].Type != execution.EventRestart {
		t.Errorf("events = %v, want start and restart", evs)
	}
	c, err := s.Claim(ctx, "gw2", t0, store.Limits{})
	if err != nil || c.ID != "ex_h" || string(c.Request) != `{"code":"x"}` || c.Attempts != 1 || c.LastEvent != 2 {
		t.Fatalf("Claim after the hand-back = %+v, %v; want ex_h with its request, attempt 1, after event 2", c, err)
	}
	create(t, s, store.Execution{ID: "ex_sync", Caller: "a", Status: store.Running, Owner: "gw2"})
	if err := s.Finish(ctx, "ex_sync", "gw2", store.Queued, nil, nil, t0); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("Finish(Queued) of a synchronous execution = %v, want ErrNotOwner (it cannot be queued)", err)
	}
}
