package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// testCallbackDue checks that every way an execution with a callback URL
// ends makes its callback pending, and that one without stays without.
func testCallbackDue(t *testing.T, s store.Store) {
	ctx := t.Context()
	const cb = "https://hooks.example.com/cb"
	create(t, s, store.Execution{ID: "ex_fin", Caller: "a", Async: true, CallbackURL: cb, Request: []byte(`{}`)})
	create(t, s, store.Execution{ID: "ex_none", Caller: "a", Async: true, Request: []byte(`{}`)})
	create(t, s, store.Execution{ID: "ex_cancel", Caller: "a", Async: true, CallbackURL: cb, Request: []byte(`{}`)})
	create(t, s, store.Execution{ID: "ex_crash", Caller: "a", Async: true, Outbound: true, CallbackURL: cb, Request: []byte(`{}`)})
	create(t, s, store.Execution{ID: "ex_rerun", Caller: "a", Async: true, CallbackURL: cb, Request: []byte(`{}`)})
	for _, id := range []string{"ex_fin", "ex_none"} {
		if c, err := s.Claim(ctx, "gw1", t0, store.Limits{}); err != nil || c.ID != id || c.Callback.State != store.CallbackNone {
			t.Fatalf("Claim = %+v, %v; want %s, no callback state yet", c, err, id)
		}
		if err := s.Finish(ctx, id, "gw1", store.Finished, &execution.Result{ID: id}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Cancel(ctx, "a", "ex_cancel", t0); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Claim(ctx, "dead", t0, store.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Recover(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := map[string]store.CallbackState{
		"ex_fin": store.CallbackPending, "ex_none": store.CallbackNone, "ex_cancel": store.CallbackPending,
		"ex_crash": store.CallbackPending, "ex_rerun": store.CallbackNone, // queued again, not ended
	}
	for id, state := range want {
		e, err := s.Get(ctx, "a", id)
		if err != nil || e.Callback.State != state || len(e.Callback.Attempts) != 0 {
			t.Errorf("Get(%s).Callback = %+v, %v; want state %q, no attempts", id, e.Callback, err, state)
		}
	}
}

// testClaimCallback checks claims: oldest first, never one a live gateway
// holds, again once its holder's lease is gone; attempts stored in order;
// a final state ends the claim; a lost claim refuses the loser's writes.
func testClaimCallback(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"ex_1", "ex_2"} {
		create(t, s, store.Execution{ID: id, Caller: "a", Status: store.Running, Owner: "gw", CallbackURL: "https://h.example/" + id})
		if err := s.Finish(ctx, id, "gw", store.Finished, &execution.Result{ID: id}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, gw := range []string{"gw1", "gw2"} {
		if err := s.Lease(ctx, gw, t0.Add(time.Minute), false); err != nil {
			t.Fatal(err)
		}
	}
	c1, err := s.ClaimCallback(ctx, "gw1", t0)
	if err != nil || c1.ID != "ex_1" || c1.Callback.Owner != "gw1" || c1.Callback.State != store.CallbackPending {
		t.Fatalf("ClaimCallback = %+v, %v; want ex_1 pending, held by gw1", c1, err)
	}
	if c, err := s.ClaimCallback(ctx, "gw2", t0); err != nil || c.ID != "ex_2" {
		t.Fatalf("ClaimCallback(gw2) = %+v, %v; want ex_2", c, err)
	}
	if c, err := s.ClaimCallback(ctx, "gw2", t0); !errors.Is(err, store.ErrEmpty) {
		t.Errorf("ClaimCallback(all held) = %+v, %v; want ErrEmpty", c, err)
	}
	a1 := execution.CallbackAttempt{At: t0, Status: 503, Error: "answered 503", DurationMs: 1.5}
	a2 := execution.CallbackAttempt{At: t0.Add(time.Second), Status: 200, DurationMs: 2}
	pending := store.Callback{State: store.CallbackPending, Attempts: []execution.CallbackAttempt{a1}}
	if err := s.SaveCallback(ctx, "ex_1", "gw2", pending, false); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("SaveCallback(not the holder) = %v, want ErrNotOwner", err)
	}
	if err := s.SaveCallback(ctx, "ex_1", "gw1", pending, false); err != nil {
		t.Fatalf("SaveCallback(pending) = %v", err)
	}
	// The second attempt is counted before it is sent; gw1 dies while it
	// is under way, so its outcome is never stored.
	sending := store.Callback{State: store.CallbackPending, Attempts: []execution.CallbackAttempt{a1}, Sent: 2}
	if err := s.SaveCallback(ctx, "ex_1", "gw1", sending, false); err != nil {
		t.Fatalf("SaveCallback(sending the second) = %v", err)
	}
	// gw1's lease expires, and gw2 takes ex_1 over with its attempts and
	// the count of those sent.
	c, err := s.ClaimCallback(ctx, "gw2", t0.Add(2*time.Minute))
	if err != nil || c.ID != "ex_1" || !slices.Equal(c.Callback.Attempts, []execution.CallbackAttempt{a1}) || c.Callback.Sent != 2 {
		t.Fatalf("ClaimCallback(after gw1's lease expired) = %+v, %v; want ex_1 with its first attempt, 2 sent", c, err)
	}
	if err := s.SaveCallback(ctx, "ex_1", "gw1", pending, false); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("SaveCallback(by the gateway that lost it) = %v, want ErrNotOwner", err)
	}
	done := store.Callback{State: store.CallbackDelivered, Attempts: []execution.CallbackAttempt{a1, a2}}
	if err := s.SaveCallback(ctx, "ex_1", "gw2", done, false); err != nil {
		t.Fatalf("SaveCallback(delivered) = %v", err)
	}
	if err := s.SaveCallback(ctx, "ex_1", "gw2", done, false); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("SaveCallback(after the final state) = %v, want ErrNotOwner", err)
	}
	e, err := s.Get(ctx, "a", "ex_1")
	if err != nil || e.Callback.State != store.CallbackDelivered || e.Callback.Owner != "" || len(e.Callback.Attempts) != 2 ||
		!e.Callback.Attempts[0].At.Equal(a1.At) || e.Callback.Attempts[0].Status != 503 || e.Callback.Attempts[1].DurationMs != 2 {
		t.Errorf("Get(ex_1).Callback = %+v, %v; want delivered after two attempts, no holder", e.Callback, err)
	}
	// Released (a gateway stopping): another takes it at once.
	failed := store.Callback{State: store.CallbackPending, Attempts: []execution.CallbackAttempt{a1}}
	if err := s.SaveCallback(ctx, "ex_2", "gw2", failed, true); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ClaimCallback(ctx, "gw1", t0); err != nil || c.ID != "ex_2" {
		t.Errorf("ClaimCallback(released) = %+v, %v; want ex_2", c, err)
	}
	if err := s.SaveCallback(ctx, "ex_2", "gw1", store.Callback{State: store.CallbackFailed, Reason: "answered 410"}, false); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Get(ctx, "a", "ex_2"); e.Callback.State != store.CallbackFailed || e.Callback.Reason != "answered 410" {
		t.Errorf("Get(ex_2).Callback = %+v, want failed with its reason", e.Callback)
	}
	if c, err := s.ClaimCallback(ctx, "gw1", t0.Add(time.Hour)); !errors.Is(err, store.ErrEmpty) {
		t.Errorf("ClaimCallback(none pending) = %+v, %v; want ErrEmpty", c, err)
	}
}

// testClaimCallbackConcurrent: many gateways claiming at once each get a
// different callback, and every callback is claimed exactly once.
func testClaimCallbackConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n, gateways = 20, 4
	for i := range n {
		id := "ex_" + string(rune('a'+i))
		create(t, s, store.Execution{ID: id, Caller: "a", Status: store.Running, Owner: "gw", CallbackURL: "https://h.example/"})
		if err := s.Finish(ctx, id, "gw", store.Finished, &execution.Result{ID: id}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for g := range gateways {
		owner := "gw" + string(rune('0'+g))
		if err := s.Lease(ctx, owner, t0.Add(time.Hour), false); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for {
				e, err := s.ClaimCallback(ctx, owner, t0)
				if errors.Is(err, store.ErrEmpty) {
					return
				}
				if err != nil {
					t.Errorf("ClaimCallback = %v", err)
					return
				}
				mu.Lock()
				seen[e.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d callbacks, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times, want once", id, k)
		}
	}
}
