package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestCallbackSurvivesRestart: a delivery under way when the gateway stops
// (SIGTERM: History.Close) stays pending in the store, and the next
// gateway on the same SQLite file sends it again, with the same delivery
// id, keeping the first attempt in the record.
func TestCallbackSurvivesRestart(t *testing.T) {
	recv := newHookReceiver(t, 0, http.StatusOK) // the first request hangs
	path := filepath.Join(t.TempDir(), "executions.db")
	gatewayURL(t)
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	opts := fastRetries()
	opts.Secret = func(string) []byte { return callbackSecret }
	opts.Grace = 50 * time.Millisecond
	key, k := apitest.NewKey(t, "alice")
	o := apitest.Options()
	o.Keys = auth.NewKeyring([]auth.Key{k})
	o.Store, o.Records = st, executions.RecordOptions{Callbacks: opts}
	handler, h := apitest.Handler(t, zerolog.Nop(), shared.backend, o)
	srv := httptest.NewServer(handler)
	first := &historyGateway{url: srv.URL, alice: key, store: st}
	id := first.submit(t, key, map[string]any{"code": guest(`console.log("once");`), "callbackUrl": recv.URL})
	if h := recv.next(t); h.delivery != id || h.verifyErr != nil {
		t.Fatalf("first request: delivery %q, verify %v", h.delivery, h.verifyErr)
	}

	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("History.Close = %v", err)
	}
	e, err := st.Get(t.Context(), "alice", id)
	if err != nil || e.Callback.State != store.CallbackPending || e.Callback.Owner != "" || len(e.Callback.Attempts) != 1 {
		t.Fatalf("after Close: callback %+v, %v; want pending, released, one attempt", e.Callback, err)
	}
	st.Close()

	g := newHistoryGatewayAt(t, path, executions.RecordOptions{Callbacks: fastRetries()})
	again := recv.next(t)
	if again.delivery != id || again.verifyErr != nil || again.attempt != "2" {
		t.Errorf("after restart: delivery %q attempt %q, verify %v; want %s, attempt 2, signed", again.delivery, again.attempt, again.verifyErr, id)
	}
	// The restarted gateway has its own keys: read the record from the store.
	var cb store.Callback
	testwait.Until(60*time.Second, func() bool {
		e, err := g.store.Get(t.Context(), "alice", id)
		if err != nil {
			t.Fatal(err)
		}
		cb = e.Callback
		return cb.State == store.CallbackDelivered
	})
	if cb.State != store.CallbackDelivered || len(cb.Attempts) != 2 || cb.Attempts[0].Error == "" || cb.Attempts[1].Status != http.StatusOK {
		t.Errorf("after restart: callback %+v, want delivered, the cut attempt then a 200", cb)
	}
	if n := recv.count(); n != 2 {
		t.Errorf("receiver got %d requests, want 2 (the cut one and the resent one)", n)
	}
}

// TestCallbackAfterCrash: what a gateway killed with SIGKILL left behind —
// a callback it had claimed and tried once, an execution it ran that
// allowed the network, and one that did not — reaches the receiver from
// the next gateway on the same file: the claimed one resent, the first
// execution finished as runtime_crashed, the second run again; each once.
func TestCallbackAfterCrash(t *testing.T) {
	recv := newHookReceiver(t, http.StatusOK)
	path := filepath.Join(t.TempDir(), "executions.db")
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	if err := st.Lease(ctx, "gw_dead", now.Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	body := func(outbound bool) []byte {
		b, _ := json.Marshal(map[string]any{"code": guest(`console.log("again");`), "allowOutbound": outbound})
		return b
	}
	for _, e := range []store.Execution{
		{ID: "ex_sent", Request: body(false)},
		{ID: "ex_net", Outbound: true, Request: body(true)},
		{ID: "ex_pure", Request: body(false)},
	} {
		e.Caller, e.Status, e.Async, e.CreatedAt, e.CallbackURL = "alice", store.Queued, true, now, recv.URL
		if err := st.Create(ctx, &e); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Claim(ctx, "gw_dead", now, store.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Finish(ctx, "ex_sent", "gw_dead", store.Finished, &execution.Result{ID: "ex_sent", Success: true}, nil, now); err != nil {
		t.Fatal(err)
	}
	if c, err := st.ClaimCallback(ctx, "gw_dead", now); err != nil || c.ID != "ex_sent" {
		t.Fatalf("ClaimCallback = %+v, %v", c, err)
	}
	tried := store.Callback{State: store.CallbackPending, Attempts: []execution.CallbackAttempt{{At: now, Error: "connection reset"}}}
	if err := st.SaveCallback(ctx, "ex_sent", "gw_dead", tried, false); err != nil {
		t.Fatal(err)
	}
	st.Close() // no Release: the gateway died

	g := newHistoryGatewayAt(t, path, executions.RecordOptions{Callbacks: fastRetries()})
	got := map[string]execution.Record{}
	for range 3 {
		h := recv.next(t)
		var rec execution.Record
		if err := json.Unmarshal(h.body, &rec); err != nil || h.verifyErr != nil || h.delivery != rec.ID {
			t.Fatalf("callback %s: verify %v, delivery %q", h.body, h.verifyErr, h.delivery)
		}
		if _, dup := got[rec.ID]; dup {
			t.Errorf("%s delivered twice", rec.ID)
		}
		got[rec.ID] = rec
	}
	if r := got["ex_net"]; r.Result == nil || r.Result.Error == nil || r.Result.Error.Code != execution.CodeRuntimeCrashed {
		t.Errorf("ex_net callback result = %+v, want runtime_crashed", r.Result)
	}
	if r := got["ex_pure"]; r.Result == nil || !r.Result.Success || r.Result.Stdout != "again" {
		t.Errorf("ex_pure callback result = %+v, want run again, successfully", r.Result)
	}
	if r := got["ex_sent"]; r.Callback == nil || len(r.Callback.Attempts) != 1 || r.Callback.Attempts[0].Error != "connection reset" {
		t.Errorf("ex_sent callback = %+v, want its earlier attempt kept", r.Callback)
	}
	for id := range got {
		cb := g.awaitCallback(t, id, execution.CallbackDelivered)
		if cb.Attempts[len(cb.Attempts)-1].Status != http.StatusOK {
			t.Errorf("%s callback = %+v, want its last attempt answered 200", id, cb)
		}
	}
	if n := recv.count(); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

// TestCallbacksTwoGatewaysOnePostgres: two gateways on one PostgreSQL
// database, each claiming pending callbacks: every execution's record
// reaches the receiver exactly once.
func TestCallbacksTwoGatewaysOnePostgres(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	recv := newHookReceiver(t, http.StatusOK)
	gatewayURL(t) // starts the shared runtime
	gws, key := pgGateways(t, pg, shared.backend)
	const n = 20
	ids := map[string]bool{}
	for i := range n {
		ids[gws[i%2].submit(t, key, map[string]any{"code": guest(""), "callbackUrl": recv.URL})] = true
	}
	got := map[string]int{}
	for range n {
		h := recv.next(t)
		if h.verifyErr != nil || !ids[h.delivery] {
			t.Errorf("callback for %q: verify %v; want one of ours, signed", h.delivery, h.verifyErr)
		}
		got[h.delivery]++
	}
	for id := range ids {
		gws[0].awaitCallback(t, id, execution.CallbackDelivered)
		if got[id] != 1 {
			t.Errorf("%s received %d times, want once", id, got[id])
		}
	}
	if c := recv.count(); c != n {
		t.Errorf("receiver got %d requests, want %d", c, n)
	}
}
