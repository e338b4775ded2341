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
		{"Scripts", testScripts},
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
	create(t, s, store.Execution{ID: "ex_a", Caller: "alice", Async: true, Outbound: true,
		Request: []byte(`{"code":"x"}`), CallbackURL: "https://example.com/cb", CreatedAt: t0})
	got, err := s.Get(t.Context(), "alice", "ex_a")
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got.Status != store.Queued || !got.Async || !got.Outbound || got.Request != nil ||
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

func testEvents(t *testing.T, s store.Store) {
	create(t, s, store.Execution{ID: "ex_e", Caller: "a", Status: store.Running, Owner: "gw"})
	var evs []store.Event
	for i := int64(1); i <= 7; i++ {
		evs = append(evs, store.Event{Seq: i, Type: "log", Data: json.RawMessage(fmt.Sprintf(`{"type":"log","n":%d}`, i))})
	}
	if err := s.AppendEvents(t.Context(), "ex_e", evs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(t.Context(), "ex_e", evs[3:]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(t.Context(), "ex_e", evs[6:]); err == nil {
		t.Error("AppendEvents(an id again) = nil, want an error")
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{{0, 100, []int64{1, 2, 3, 4, 5, 6, 7}}, {3, 100, []int64{4, 5, 6, 7}}, {2, 2, []int64{3, 4}}, {7, 10, nil}} {
		got, err := s.Events(t.Context(), "ex_e", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, ev := range got {
			seqs = append(seqs, ev.Seq)
			if want := fmt.Sprintf(`{"type":"log","n":%d}`, ev.Seq); !jsonEqual(ev.Data, want) || ev.Type != "log" {
				t.Errorf("event %d = %s %s, want log %s", ev.Seq, ev.Type, ev.Data, want)
			}
		}
		if !slices.Equal(seqs, tc.want) {
			t.Errorf("Events(after %d, limit %d) = %v, want %v", tc.after, tc.limit, seqs, tc.want)
		}
	}
}

// testEventRuns stores a flood of log events between other events, in
// writes of several sizes, and reads them back page by page from every
// kind of point: each event exactly once, in order, as it was stored.
func testEventRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	create(t, s, store.Execution{ID: "ex_r", Caller: "a", Status: store.Running, Owner: "gw"})
	const n = 1000
	var all []store.Event
	for seq := int64(1); seq <= n; seq++ {
		typ := "log"
		switch {
		case seq == 1:
			typ = "start"
		case seq%97 == 0:
			typ = "net"
		case seq == n:
			typ = "result"
		}
		all = append(all, store.Event{Seq: seq, Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"type":%q,"n":%d,"s":"a\u0000\"]"}`, typ, seq))})
	}
	for i, size := 0, 1; i < n; i, size = i+size, size*3%700+1 {
		if err := s.AppendEvents(ctx, "ex_r", all[i:min(n, i+size)]); err != nil {
			t.Fatalf("AppendEvents(%d..) = %v", i+1, err)
		}
	}
	for _, page := range []int{1, 7, 256, 2000} {
		for _, from := range []int64{0, 1, 2, 255, 256, 257, 500, 999, 1000} {
			var got []store.Event
			for after := from; ; {
				evs, err := s.Events(ctx, "ex_r", after, page)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) > page {
					t.Fatalf("Events(after %d, limit %d) = %d events", after, page, len(evs))
				}
				got = append(got, evs...)
				if len(evs) < page {
					break
				}
				after = evs[len(evs)-1].Seq
			}
			want := all[from:]
			if len(got) != len(want) {
				t.Fatalf("pages of %d from %d: %d events, want %d", page, from, len(got), len(want))
			}
			for i := range want {
				if got[i].Seq != want[i].Seq || got[i].Type != want[i].Type || !jsonEqual(got[i].Data, string(want[i].Data)) {
					t.Fatalf("pages of %d from %d: event %d = %d %s %s, want %d %s %s", page, from, i,
						got[i].Seq, got[i].Type, got[i].Data, want[i].Seq, want[i].Type, want[i].Data)
				}
			}
		}
	}
}

func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && fmt.Sprint(a) == fmt.Sprint(b)
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

// resultOf is e's result, decoded; nil if it has none or it does not decode.
func resultOf(e *store.Execution) *execution.Result {
	r, _ := e.DecodedResult()
	return r
}
