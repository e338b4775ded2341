package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// testRecover: the executions of a gateway whose lease ran out are queued
// again or ended (runtime_crashed, or cancelled when asked to stop), by
// whether they may have had side effects and by their retry policy; those
// of a live gateway stay its own until it releases its lease.
func testRecover(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, gw := range []string{"dead", "alive"} {
		if err := s.Lease(ctx, gw, t0.Add(10*time.Second), false); err != nil {
			t.Fatal(err)
		}
	}
	// Claimed by the dead gateway: safe to rerun, with side effects, asked
	// to stop; with side effects but idempotent; safe but never to run again.
	for _, e := range []store.Execution{
		{ID: "ex_pure", Async: true},
		{ID: "ex_net", Async: true, Outbound: true},
		{ID: "ex_stop", Async: true},
		{ID: "ex_idem", Async: true, Outbound: true, Retry: execution.RetryAlways},
		{ID: "ex_never", Async: true, Retry: execution.RetryNever},
	} {
		e.Caller, e.Request = "a", []byte(`{}`)
		create(t, s, e)
		if c, err := s.Claim(ctx, "dead", t0, store.Limits{}); err != nil || c.ID != e.ID {
			t.Fatalf("Claim = %v, %v; want %s", c, err, e.ID)
		}
	}
	if _, err := s.Cancel(ctx, "a", "ex_stop", t0); err != nil {
		t.Fatal(err)
	}
	create(t, s, store.Execution{ID: "ex_sync", Caller: "a", Status: store.Running, Owner: "dead"})
	create(t, s, store.Execution{ID: "ex_mine", Caller: "a", Status: store.Running, Owner: "alive", Async: true})
	_ = s.AppendEvents(ctx, "ex_pure", []store.Event{{Seq: 1, Type: "start", Data: json.RawMessage(`{"type":"start","id":"ex_pure"}`)}})

	if got, err := s.Recover(ctx, t0.Add(5*time.Second)); err != nil || len(got.Requeued)+len(got.Crashed) != 0 {
		t.Errorf("Recover(leases live) = %+v, %v; want nothing", got, err)
	}
	if err := s.Lease(ctx, "alive", t0.Add(time.Minute), true); err != nil {
		t.Fatalf("Lease(renew) = %v", err)
	}
	got, err := s.Recover(ctx, t0.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Requeued)
	if !slices.Equal(got.Requeued, []string{"ex_idem", "ex_pure"}) {
		t.Errorf("Recover requeued %v, want [ex_idem ex_pure]", got.Requeued)
	}
	var ended []string
	for _, e := range got.Crashed {
		ended = append(ended, e.ID+":"+string(e.Status))
	}
	slices.Sort(ended)
	if want := []string{"ex_net:finished", "ex_never:finished", "ex_stop:cancelled", "ex_sync:finished"}; !slices.Equal(ended, want) {
		t.Errorf("Recover ended %v, want %v", ended, want)
	}
	for _, id := range []string{"ex_net", "ex_sync", "ex_never"} {
		e, _ := s.Get(ctx, "a", id)
		res, err := e.DecodedResult()
		if err != nil || res == nil || res.Error == nil || res.Error.Code != execution.CodeRuntimeCrashed || e.Request != nil {
			t.Errorf("%s after Recover = %+v (result %+v, %v), want runtime_crashed, request deleted", id, e, res, err)
		}
		evs, _ := s.Events(ctx, id, 0, 10)
		if len(evs) != 1 || evs[0].Type != execution.EventResult {
			t.Errorf("%s events = %v, want one result", id, evs)
		}
	}
	evs, _ := s.Events(ctx, "ex_pure", 0, 10)
	if len(evs) != 2 || evs[1].Type != execution.EventRestart || evs[1].Seq != 2 {
		t.Errorf("ex_pure events = %v, want start then restart", evs)
	}
	if e, _ := s.Get(ctx, "a", "ex_mine"); e.Status != store.Running {
		t.Errorf("ex_mine (live owner) = %s, want running", e.Status)
	}
	c, err := s.Claim(ctx, "alive", t0.Add(21*time.Second), store.Limits{})
	if err != nil || c.ID != "ex_pure" || c.Attempts != 2 || c.LastEvent != 2 {
		t.Errorf("Claim after Recover = %+v, %v; want ex_pure, attempt 2, last event 2", c, err)
	}
	if err := s.Lease(ctx, "dead", t0.Add(time.Hour), true); !errors.Is(err, store.ErrNoLease) {
		t.Errorf("Lease(renew a lost lease) = %v, want ErrNoLease", err)
	}
	if err := s.Release(ctx, "alive"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Recover(ctx, t0.Add(22*time.Second))
	if err != nil || len(got.Requeued) != 2 {
		t.Errorf("Recover after Release = %+v, %v; want ex_mine and ex_pure requeued", got, err)
	}
}

// testPurge removes the records (and events) finished before a time, and
// keeps newer and unfinished ones.
func testPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, id := range []string{"ex_old", "ex_new"} {
		create(t, s, store.Execution{ID: id, Caller: "a", Status: store.Running, Owner: "gw"})
		_ = s.AppendEvents(ctx, id, []store.Event{{Seq: 1, Type: "start", Data: json.RawMessage(`{}`)}})
		if err := s.Finish(ctx, id, "gw", store.Finished, &execution.Result{ID: id}, nil, t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, store.Execution{ID: "ex_queued", Caller: "a", Async: true})
	n, err := s.Purge(ctx, t0.Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Errorf("Purge = %d, %v; want 1", n, err)
	}
	if _, err := s.Get(ctx, "a", "ex_old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(purged) = %v, want ErrNotFound", err)
	}
	if evs, _ := s.Events(ctx, "ex_old", 0, 10); len(evs) != 0 {
		t.Errorf("events of a purged record = %v, want none", evs)
	}
	for _, id := range []string{"ex_new", "ex_queued"} {
		if _, err := s.Get(ctx, "a", id); err != nil {
			t.Errorf("Get(%s) after Purge = %v, want kept", id, err)
		}
	}
}
