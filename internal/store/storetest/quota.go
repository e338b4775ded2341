package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/internal/store"
)

// testEnqueueBounds checks the queue's bounds: a caller past its own bound
// is refused while another caller still queues; past the total everyone is.
func testEnqueueBounds(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := store.Bounds{Total: 5, PerCaller: 3}
	enqueue := func(id, caller string) error {
		return s.Enqueue(ctx, &store.Execution{ID: id, Caller: caller, Async: true, Request: []byte(`{}`), CreatedAt: t0}, b)
	}
	for i := range 3 {
		if err := enqueue(fmt.Sprintf("ex_a%d", i), "a"); err != nil {
			t.Fatalf("Enqueue(a, %d) = %v", i, err)
		}
	}
	if err := enqueue("ex_a3", "a"); !errors.Is(err, store.ErrCallerQueueFull) {
		t.Errorf("Enqueue(a past its bound) = %v, want ErrCallerQueueFull", err)
	}
	if err := enqueue("ex_a0", "b"); !errors.Is(err, store.ErrExists) {
		t.Errorf("Enqueue(an id that exists) = %v, want ErrExists", err)
	}
	for i := range 2 {
		if err := enqueue(fmt.Sprintf("ex_b%d", i), "b"); err != nil {
			t.Fatalf("Enqueue(b, %d) = %v; another caller's backlog must not block b", i, err)
		}
	}
	if err := enqueue("ex_c0", "c"); !errors.Is(err, store.ErrQueueFull) {
		t.Errorf("Enqueue(past the total) = %v, want ErrQueueFull", err)
	}
	if _, err := s.Get(ctx, "a", "ex_a3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(a refused execution) = %v, want ErrNotFound", err)
	}
	// An execution that leaves the queue makes room for its caller.
	if _, err := s.Cancel(ctx, "a", "ex_a0", t0); err != nil {
		t.Fatal(err)
	}
	b.Total = 0
	if err := enqueue("ex_a4", "a"); err != nil {
		t.Errorf("Enqueue(a after a cancel) = %v, want nil", err)
	}
	if e, err := s.Get(ctx, "a", "ex_a4"); err != nil || e.Status != store.Queued {
		t.Errorf("Get(ex_a4) = %+v, %v; want queued", e, err)
	}
}

// testEnqueueConcurrent submits a burst of one caller's executions from
// many goroutines (as many gateways would): exactly its bound is queued.
func testEnqueueConcurrent(t *testing.T, s store.Store) {
	const burst, bound = 40, 7
	var wg sync.WaitGroup
	var mu sync.Mutex
	queued := 0
	for i := range burst {
		wg.Go(func() {
			err := s.Enqueue(t.Context(), &store.Execution{ID: fmt.Sprintf("ex_%03d", i), Caller: "a", Async: true, CreatedAt: t0},
				store.Bounds{PerCaller: bound})
			switch {
			case err == nil:
				mu.Lock()
				queued++
				mu.Unlock()
			case !errors.Is(err, store.ErrCallerQueueFull):
				t.Errorf("Enqueue = %v", err)
			}
		})
	}
	wg.Wait()
	n, err := s.CountQueued(t.Context())
	if err != nil || n != bound || queued != bound {
		t.Errorf("after a burst of %d: %d accepted, CountQueued = %d, %v; want %d", burst, queued, n, err, bound)
	}
}

// testClaimLimits checks that Claim leaves queued the executions of a
// caller that has its limit running, synchronous ones included, and goes
// on with other callers'.
func testClaimLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	lim := store.Limits{Default: 2, Callers: map[string]int{"a": 1, "c": 0}}
	for i := range 3 {
		create(t, s, store.Execution{ID: fmt.Sprintf("ex_a%d", i), Caller: "a", Async: true})
		create(t, s, store.Execution{ID: fmt.Sprintf("ex_b%d", i), Caller: "b", Async: true})
	}
	create(t, s, store.Execution{ID: "ex_c0", Caller: "c", Async: true})
	if err := s.HoldSlot(ctx, "c", "ex_csync", "gw0", 2); err != nil { // a synchronous one running
		t.Fatal(err)
	}
	create(t, s, store.Execution{ID: "ex_c1", Caller: "c", Async: true})
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
	// a: 1; b: 2 (the default); c: 2 with its synchronous one (0: the default).
	want := []string{"ex_a0", "ex_b0", "ex_c0", "ex_b1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("claimed %v, want %v", got, want)
	}
	if err := s.Finish(ctx, "ex_a0", "gw1", store.Finished, nil, nil, t0); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Claim(ctx, "gw1", t0, lim); err != nil || e.ID != "ex_a1" {
		t.Errorf("Claim after a's execution ended = %+v, %v; want ex_a1", e, err)
	}
	if e, err := s.Claim(ctx, "gw1", t0, store.Limits{}); err != nil || e.ID != "ex_a2" {
		t.Errorf("Claim(no limits) = %+v, %v; want ex_a2 (oldest among the fewest running)", e, err)
	}
}

// testClaimLimitsConcurrent claims from many goroutines as many owners,
// round after round, with a limit of 1 for the round's caller and none
// finishing: exactly one of its executions runs, every other's does.
func testClaimLimitsConcurrent(t *testing.T, s store.Store) {
	const rounds, n, workers = 6, 12, 8
	lim := store.Limits{Callers: map[string]int{}}
	for r := range rounds {
		one := fmt.Sprintf("one%d", r)
		lim.Callers[one] = 1
		for i := range n {
			create(t, s, store.Execution{ID: fmt.Sprintf("ex_%d_one_%03d", r, i), Caller: one, Async: true})
			create(t, s, store.Execution{ID: fmt.Sprintf("ex_%d_any_%03d", r, i), Caller: "any", Async: true})
		}
		var mu sync.Mutex
		claimed := map[string]int{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for {
					e, err := s.Claim(t.Context(), fmt.Sprintf("gw%d", w), t0, lim)
					if errors.Is(err, store.ErrEmpty) {
						return
					}
					if err != nil {
						t.Errorf("Claim = %v", err)
						return
					}
					mu.Lock()
					claimed[e.Caller]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if claimed[one] != 1 || claimed["any"] != n {
			t.Errorf("round %d: claimed %v, want %s: 1 (its limit), any: %d", r, claimed, one, n)
		}
	}
}
