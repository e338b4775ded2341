package api_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
)

// TestRecoverAbandoned starts a gateway on a store where a dead gateway
// left executions running: the one that allowed no network runs again and
// succeeds; the one that allowed the network, and a synchronous one, end
// as runtime_crashed; the Finished hook gets every one of them.
func TestRecoverAbandoned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "executions.db")
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	body := func(outbound bool) []byte {
		b, _ := json.Marshal(map[string]any{"code": guest(`console.log("again");`), "allowOutbound": outbound})
		return b
	}
	for _, e := range []store.Execution{
		{ID: "ex_pure", Async: true, Request: body(false)},
		{ID: "ex_net", Async: true, Outbound: true, Request: body(true)},
	} {
		e.Caller, e.Status, e.CreatedAt = "alice", store.Queued, time.Now()
		if err := st.Create(t.Context(), &e); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Claim(t.Context(), "gw_dead", time.Now(), store.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	sync := store.Execution{ID: "ex_sync", Caller: "alice", Status: store.Running, Owner: "gw_dead", CreatedAt: time.Now()}
	if err := st.Create(t.Context(), &sync); err != nil {
		t.Fatal(err)
	}
	st.Close()

	g := newHistoryGatewayAt(t, path, executions.RecordOptions{})
	rec := g.await(t, g.alice, "ex_pure", execution.StatusFinished)
	if rec.Result == nil || !rec.Result.Success || rec.Result.Stdout != "again" {
		t.Errorf("ex_pure = %+v, want run again, successfully", rec.Result)
	}
	for _, id := range []string{"ex_net", "ex_sync"} {
		rec := g.await(t, g.alice, id, execution.StatusFinished)
		if rec.Result == nil || rec.Result.Error == nil || rec.Result.Error.Code != execution.CodeRuntimeCrashed {
			t.Errorf("%s = %+v, want runtime_crashed", id, rec.Result)
		}
	}
	hooked := map[string]bool{}
	for range 3 {
		e := <-g.finished
		hooked[e.ID] = e.Status == store.Finished
	}
	if !hooked["ex_pure"] || !hooked["ex_net"] || !hooked["ex_sync"] {
		t.Errorf("Finished hook got %v, want all three finished", hooked)
	}
}
