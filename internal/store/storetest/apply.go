package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// testApply makes many writes in one Apply: each has its own outcome, and a
// refused one leaves the others written.
func testApply(t *testing.T, s store.Store) {
	ctx := t.Context()
	create(t, s, store.Execution{ID: "ex_old", Caller: "a"})
	ev := func(seq int64, typ string) store.Event {
		return store.Event{Seq: seq, Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"type":%q}`, typ))}
	}
	res := &execution.Result{ID: "ex_new", Success: true}
	errs, err := s.Apply(ctx, []store.Write{
		{Create: &store.Execution{ID: "ex_new", Caller: "a", Status: store.Running, Owner: "gw", CreatedAt: t0}},
		{Create: &store.Execution{ID: "ex_old", Caller: "b", Status: store.Running, Owner: "gw", CreatedAt: t0}},
		{ID: "ex_new", Events: []store.Event{ev(1, "start"), ev(2, "log")}},
		{ID: "ex_old", Events: []store.Event{ev(1, "result")}, Finish: &store.Ending{Owner: "gw", Status: store.Finished, At: t0}},
		{ID: "ex_new", Events: []store.Event{ev(3, "result")}, Finish: &store.Ending{Owner: "gw", Status: store.Finished, Result: res, At: t0}},
	})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	want := []error{nil, store.ErrExists, nil, store.ErrNotOwner, nil}
	for i := range want {
		if !errors.Is(errs[i], want[i]) {
			t.Errorf("Apply outcome %d = %v, want %v", i, errs[i], want[i])
		}
	}
	if e, err := s.Get(ctx, "a", "ex_new"); err != nil || e.Status != store.Finished || resultOf(e) == nil || !resultOf(e).Success {
		t.Errorf("ex_new after Apply = %+v, %v; want finished with its result", e, err)
	}
	if evs, _ := s.Events(ctx, "ex_new", 0, 10); len(evs) != 3 {
		t.Errorf("ex_new events = %v, want 3", evs)
	}
	if evs, _ := s.Events(ctx, "ex_old", 0, 10); len(evs) != 0 {
		t.Errorf("ex_old events = %v, want none (its Finish was refused)", evs)
	}
	if e, _ := s.Get(ctx, "a", "ex_old"); e.Status != store.Queued {
		t.Errorf("ex_old = %s, want still queued", e.Status)
	}

	// A record written once it has ended: Create and Finish in one write,
	// its events with it; an id that exists is refused with its events.
	done := &execution.Result{ID: "ex_done", Success: true, Stdout: "hi"}
	ended := t0.Add(time.Second)
	errs, err = s.Apply(ctx, []store.Write{
		{Create: &store.Execution{ID: "ex_done", Caller: "a", Status: store.Running, Owner: "gw", CreatedAt: t0, StartedAt: t0},
			Events: []store.Event{ev(1, "start"), ev(2, "log"), ev(3, "result")},
			Finish: &store.Ending{Owner: "gw", Status: store.Finished, Result: done, At: ended}},
		{Create: &store.Execution{ID: "ex_old", Caller: "a", Status: store.Running, Owner: "gw", CreatedAt: t0},
			Events: []store.Event{ev(1, "start")},
			Finish: &store.Ending{Owner: "gw", Status: store.Cancelled, At: ended}},
		{Create: &store.Execution{ID: "ex_long", Caller: "a", Status: store.Running, Owner: "gw", CreatedAt: t0},
			Events: []store.Event{ev(1, "start"), ev(2, "log")}},
		{Create: &store.Execution{ID: "ex_encoded", Caller: "a", Status: store.Running, Owner: "gw", CreatedAt: t0},
			Finish: &store.Ending{Owner: "gw", Status: store.Finished, Result: done,
				ResultJSON: json.RawMessage(`{"id":"ex_encoded","success":true,"stdout":"as encoded"}`), At: ended}},
	})
	if err != nil {
		t.Fatalf("Apply (ended records) = %v", err)
	}
	if errs[0] != nil || !errors.Is(errs[1], store.ErrExists) || errs[2] != nil || errs[3] != nil {
		t.Errorf("Apply (ended records) outcomes = %v, want [nil ErrExists nil nil]", errs)
	}
	e, err := s.Get(ctx, "a", "ex_done")
	if err != nil || e.Status != store.Finished || resultOf(e) == nil || resultOf(e).Stdout != "hi" ||
		!e.FinishedAt.Equal(ended) || !e.StartedAt.Equal(t0) || e.Owner != "gw" {
		t.Errorf("ex_done = %+v, %v; want finished at %v with its result", e, err, ended)
	}
	if evs, _ := s.Events(ctx, "ex_done", 0, 10); len(evs) != 3 || evs[2].Type != "result" {
		t.Errorf("ex_done events = %v, want start, log, result", evs)
	}
	if evs, _ := s.Events(ctx, "ex_old", 0, 10); len(evs) != 0 {
		t.Errorf("ex_old events = %v, want none (its Create was refused)", evs)
	}
	if e, err := s.Get(ctx, "a", "ex_encoded"); err != nil || resultOf(e) == nil || resultOf(e).Stdout != "as encoded" {
		t.Errorf("ex_encoded = %+v, %v; want the result stored as it was encoded", e, err)
	}
	if e, err := s.Get(ctx, "a", "ex_long"); err != nil || e.Status != store.Running {
		t.Errorf("ex_long = %+v, %v; want running", e, err)
	}
	if evs, _ := s.Events(ctx, "ex_long", 0, 10); len(evs) != 2 {
		t.Errorf("ex_long events = %v, want the 2 it was created with", evs)
	}
}
