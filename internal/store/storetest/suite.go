// Package storetest is the conformance suite every store.Store passes, and
// a private PostgreSQL server for running it against a real database.
package storetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// Opener opens an empty store for one test; the test closes it.
type Opener func(t *testing.T) store.Store

// t0 is the suite's clock: every time is an offset from it.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"List", testList},
		{"Claim", testClaim},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimLimits", testClaimLimits},
		{"ClaimLimitsConcurrent", testClaimLimitsConcurrent},
		{"EnqueueBounds", testEnqueueBounds},
		{"EnqueueConcurrent", testEnqueueConcurrent},
		{"Events", testEvents},
		{"EventRuns", testEventRuns},
		{"Finish", testFinish},
		{"Cancel", testCancel},
		{"Recover", testRecover},
		{"Purge", testPurge},
		{"Apply", testApply},
		{"CallbackDue", testCallbackDue},
		{"ClaimCallback", testClaimCallback},
		{"ClaimCallbackConcurrent", testClaimCallbackConcurrent},
		{"Usage", testUsage},
		{"CountStart", testCountStart},
		{"CountStartConcurrent", testCountStartConcurrent},
		{"HoldSlot", testHoldSlot},
		{"HoldSlotConcurrent", testHoldSlotConcurrent},
		{"ClaimBusy", testClaimBusy},
		{"HandBack", testHandBack},
		{"Scripts", testScripts},
		{"ScriptsBound", testScriptsBound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

func create(t *testing.T, s store.Store, e store.Execution) *store.Execution {
	t.Helper()
	if e.CreatedAt.IsZero() {
		e.CreatedAt = t0
	}
	if e.Status == "" {
		e.Status = store.Queued
	}
	if err := s.Create(t.Context(), &e); err != nil {
		t.Fatalf("Create(%s) = %v", e.ID, err)
	}
	return &e
}

func testCreateGet(t *testing.T, s store.Store) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	create(t, s, store.Execution{ID: "ex_a", Caller: "alice", Async: true, Outbound: true,
		Request: []byte(`{"code":"x"}`), CallbackURL: "https://example.com/cb", CreatedAt: t0, Trace: traceparent})
	got, err := s.Get(t.Context(), "alice", "ex_a")
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got.Status != store.Queued || !got.Async || !got.Outbound || got.Request != nil || got.Trace != traceparent ||
		got.CallbackURL != "https://example.com/cb" || !got.CreatedAt.Equal(t0) || !got.StartedAt.IsZero() || got.ResultJSON != nil {
		t.Errorf("Get = %+v, want the record created, without its request", got)
	}
	head, err := s.Head(t.Context(), "alice", "ex_a")
	if err != nil || head.ID != "ex_a" || head.Status != store.Queued || head.Request != nil || head.ResultJSON != nil {
		t.Errorf("Head = %+v, %v; want the record without request and result", head, err)
	}
	if _, err := s.Head(t.Context(), "bob", "ex_a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Head(another caller) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(t.Context(), "bob", "ex_a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(another caller) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(t.Context(), "alice", "ex_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	err = s.Create(t.Context(), &store.Execution{ID: "ex_a", Caller: "bob", Status: store.Queued, CreatedAt: t0})
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("Create(same id) = %v, want ErrExists", err)
	}
}

func testList(t *testing.T, s store.Store) {
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("ex_%02d", i)
		st := store.Queued
		if i%3 == 0 {
			st = store.Running
		}
		create(t, s, store.Execution{ID: id, Caller: "alice", Status: st, Owner: "gw"})
		create(t, s, store.Execution{ID: id + "_bob", Caller: "bob"})
		want = append([]string{id}, want...) // newest first
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := s.List(t.Context(), "alice", store.Query{Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatalf("List = %v", err)
		}
		for _, e := range page.Executions {
			got = append(got, e.ID)
		}
		if page.Next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("List never ends")
		}
		cursor = page.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("List pages = %v, want %v", got, want)
	}
	page, err := s.List(t.Context(), "alice", store.Query{Status: store.Running})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Executions) != 9 || page.Next != "" {
		t.Errorf("List(running) = %d records (next %q), want 9 on one page", len(page.Executions), page.Next)
	}
	for _, e := range page.Executions {
		if e.Status != store.Running {
			t.Errorf("List(running) has %s in %s", e.ID, e.Status)
		}
	}
	for _, bad := range []string{"nope", "eDk", "!!", "c0", "cy0x", "czU", "czEwMA", "AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := s.List(t.Context(), "alice", store.Query{Cursor: bad}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("List(cursor %q) = %v, want ErrBadCursor", bad, err)
		}
	}
	testSealedCursors(t, s)
}

// testSealedCursors: a cursor tells nothing of the records of other
// callers (it is not the global seq in the clear, whose gaps would show
// their traffic) and is refused for another caller or once tampered with.
func testSealedCursors(t *testing.T, s store.Store) {
	first, err := s.List(t.Context(), "alice", store.Query{Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("List(limit 1) = %+v, %v; want a next page", first, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(first.Next)
	if err != nil {
		t.Fatalf("cursor %q is not base64url: %v", first.Next, err)
	}
	for n := int64(1); n < 200; n++ {
		if bytes.Contains(raw, []byte(strconv.FormatInt(n, 10))) && len(raw) < 4 || bytes.Equal(raw, []byte("s"+strconv.FormatInt(n, 10))) {
			t.Errorf("cursor %q holds a seq in the clear", first.Next)
		}
	}
	if _, err := s.List(t.Context(), "bob", store.Query{Cursor: first.Next}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("List(bob, alice's cursor) = %v, want ErrBadCursor", err)
	}
	for i := range raw {
		tampered := bytes.Clone(raw)
		tampered[i] ^= 0x01
		c := base64.RawURLEncoding.EncodeToString(tampered)
		if _, err := s.List(t.Context(), "alice", store.Query{Cursor: c}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("List(cursor with byte %d flipped) = %v, want ErrBadCursor", i, err)
		}
	}
	second, err := s.List(t.Context(), "alice", store.Query{Limit: 1, Cursor: first.Next})
	if err != nil || len(second.Executions) != 1 || second.Executions[0].ID == first.Executions[0].ID {
		t.Errorf("List(next) = %+v, %v; want the next record", second, err)
	}
}

func testClaim(t *testing.T, s store.Store) {
	if _, err := s.Claim(t.Context(), "gw1", t0, store.Limits{}); !errors.Is(err, store.ErrEmpty) {
		t.Fatalf("Claim(empty) = %v, want ErrEmpty", err)
	}
	create(t, s, store.Execution{ID: "ex_1", Caller: "a", Async: true})
	create(t, s, store.Execution{ID: "ex_sync", Caller: "a", Status: store.Running, Owner: "gw0"})
	create(t, s, store.Execution{ID: "ex_2", Caller: "b", Async: true})
	if err := s.AppendEvents(t.Context(), "ex_1", []store.Event{{Seq: 1, Type: "start", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ex_1", "ex_2"} {
		e, err := s.Claim(t.Context(), "gw1", t0.Add(time.Second), store.Limits{})
		if err != nil {
			t.Fatalf("Claim = %v", err)
		}
		if e.ID != want || e.Status != store.Running || e.Owner != "gw1" || e.Attempts != 1 || !e.StartedAt.Equal(t0.Add(time.Second)) {
			t.Errorf("Claim = %+v, want %s running under gw1, attempt 1", e, want)
		}
		if wantLast := map[string]int64{"ex_1": 1, "ex_2": 0}[want]; e.LastEvent != wantLast {
			t.Errorf("Claim(%s).LastEvent = %d, want %d", want, e.LastEvent, wantLast)
		}
	}
	if _, err := s.Claim(t.Context(), "gw1", t0, store.Limits{}); !errors.Is(err, store.ErrEmpty) {
		t.Errorf("Claim(all claimed) = %v, want ErrEmpty", err)
	}
	if n, err := s.CountQueued(t.Context()); err != nil || n != 0 {
		t.Errorf("CountQueued = %d, %v, want 0", n, err)
	}
}

// testClaimConcurrent claims from many goroutines as many owners: every
// queued execution is claimed exactly once.
func testClaimConcurrent(t *testing.T, s store.Store) {
	const n, workers = 60, 8
	for i := range n {
		create(t, s, store.Execution{ID: fmt.Sprintf("ex_%03d", i), Caller: "a", Async: true})
	}
	if got, err := s.CountQueued(t.Context()); err != nil || got != n {
		t.Fatalf("CountQueued = %d, %v, want %d", got, err, n)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				e, err := s.Claim(t.Context(), fmt.Sprintf("gw%d", w), t0, store.Limits{})
				if errors.Is(err, store.ErrEmpty) {
					return
				}
				if err != nil {
					t.Errorf("Claim = %v", err)
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
		t.Errorf("claimed %d distinct executions, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s claimed %d times, want once", id, c)
		}
	}
}

func testFinish(t *testing.T, s store.Store) {
	create(t, s, store.Execution{ID: "ex_f", Caller: "a", Async: true, Request: []byte(`{"secrets":{"k":"v"}}`)})
	if _, err := s.Claim(t.Context(), "gw1", t0, store.Limits{}); err != nil {
		t.Fatal(err)
	}
	res := &execution.Result{ID: "ex_f", Success: true, Stdout: "hi", Logs: []execution.Log{{Level: "log", Stream: "stdout", Message: "hi", Time: t0}}, Outbound: []execution.Outgoing{}}
	last := []store.Event{{Seq: 1, Type: execution.EventResult, Data: json.RawMessage(`{"type":"result"}`)}}
	if err := s.Finish(t.Context(), "ex_f", "gw2", store.Finished, res, last, t0); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("Finish(another owner) = %v, want ErrNotOwner", err)
	}
	if evs, _ := s.Events(t.Context(), "ex_f", 0, 10); len(evs) != 0 {
		t.Errorf("events after a refused Finish = %v, want none", evs)
	}
	if err := s.Finish(t.Context(), "ex_f", "gw1", store.Finished, res, last, t0.Add(time.Minute)); err != nil {
		t.Fatalf("Finish = %v", err)
	}
	if evs, _ := s.Events(t.Context(), "ex_f", 0, 10); len(evs) != 1 || evs[0].Type != execution.EventResult {
		t.Errorf("events after Finish = %v, want its result event", evs)
	}
	if err := s.Finish(t.Context(), "ex_f", "gw1", store.Finished, res, nil, t0); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("Finish(twice) = %v, want ErrNotOwner", err)
	}
	got, err := s.Get(t.Context(), "a", "ex_f")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.Finished || got.Request != nil || !got.FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after Finish: status %s, request %q, finished %v; want finished, no request, %v", got.Status, got.Request, got.FinishedAt, t0.Add(time.Minute))
	}
	if res, err := got.DecodedResult(); err != nil || res == nil || res.Stdout != "hi" || !res.Success || len(res.Logs) != 1 || !res.Logs[0].Time.Equal(t0) {
		t.Errorf("after Finish: result %+v, %v; want the result given", res, err)
	}
}

func testCancel(t *testing.T, s store.Store) {
	ctx := t.Context()
	create(t, s, store.Execution{ID: "ex_q", Caller: "a", Async: true, Request: []byte(`{}`)})
	create(t, s, store.Execution{ID: "ex_r", Caller: "a", Status: store.Running, Owner: "gw1"})
	create(t, s, store.Execution{ID: "ex_d", Caller: "a", Status: store.Running, Owner: "gw1"})
	if err := s.Finish(ctx, "ex_d", "gw1", store.Finished, &execution.Result{ID: "ex_d"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, "b", "ex_q", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel(another caller) = %v, want ErrNotFound", err)
	}
	e, err := s.Cancel(ctx, "a", "ex_q", t0.Add(time.Second))
	if err != nil || e.Status != store.Cancelled || e.Request != nil || !e.FinishedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("Cancel(queued) = %+v, %v; want cancelled now, request deleted", e, err)
	}
	if _, err := s.Cancel(ctx, "a", "ex_q", t0); !errors.Is(err, store.ErrFinal) {
		t.Errorf("Cancel(cancelled) = %v, want ErrFinal", err)
	}
	if _, err := s.Claim(ctx, "gw1", t0, store.Limits{}); !errors.Is(err, store.ErrEmpty) {
		t.Errorf("Claim after cancel = %v, want ErrEmpty", err)
	}
	e, err = s.Cancel(ctx, "a", "ex_r", t0)
	if err != nil || e.Status != store.Running || !e.CancelRequested {
		t.Errorf("Cancel(running) = %+v, %v; want running, cancel requested", e, err)
	}
	if ids, err := s.CancelRequests(ctx, "gw1"); err != nil || !slices.Equal(ids, []string{"ex_r"}) {
		t.Errorf("CancelRequests(gw1) = %v, %v; want [ex_r]", ids, err)
	}
	if ids, err := s.CancelRequests(ctx, "gw2"); err != nil || len(ids) != 0 {
		t.Errorf("CancelRequests(gw2) = %v, %v; want none", ids, err)
	}
	if _, err := s.Cancel(ctx, "a", "ex_d", t0); !errors.Is(err, store.ErrFinal) {
		t.Errorf("Cancel(finished) = %v, want ErrFinal", err)
	}
}

// resultOf is e's result, decoded; nil if it has none or it does not decode.
func resultOf(e *store.Execution) *execution.Result {
	r, _ := e.DecodedResult()
	return r
}
