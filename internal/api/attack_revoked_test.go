package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/store"
)

// TestAttackQueuedByARevokedKey: executions stay queued across restarts,
// and keys are revoked (or removed) by a restart with a new configuration.
// An execution a key queued before it was revoked must not run after, with
// that key's capabilities: it ends failed, not run. The caller's name must
// match a configured, unrevoked key exactly (not another key's name in
// another case). A live key's queued execution runs.
func TestAttackQueuedByARevokedKey(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, func(o *apitest.Gateway) {
		_, alice := apitest.NewKey(t, "alice")
		_, mallory := apitest.NewKey(t, "mallory")
		mallory.Revoked = true
		o.Keys = auth.NewKeyring([]auth.Key{alice, mallory})
	})
	body, _ := json.Marshal(map[string]any{"code": guest(`const r = await env.reader.fetch("revoked"); return new Response("ran " + r.status);`),
		"capabilities": []string{"reader"}})
	want := map[string]bool{"mallory": false, "bob": false, "Alice": false, "alice": true} // caller → may run
	for caller := range want {
		err := f.store.Create(t.Context(), &store.Execution{ID: "ex_queued_" + caller, Caller: caller, Status: store.Queued, Async: true,
			Request: body, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range want {
		var e *store.Execution
		select {
		case e = <-f.finished:
		case <-time.After(60 * time.Second):
			t.Fatal("no queued execution ended within 60 s")
		}
		res := e.Result
		ran := res != nil && res.Success && res.Response != nil && res.Response.Body == "ran 200"
		if ran != want[e.Caller] {
			t.Errorf("%s's queued execution: ran %v (%+v), want %v", e.Caller, ran, res, want[e.Caller])
		}
		if !want[e.Caller] && (res == nil || res.Error == nil || res.Error.Code != execution.CodeInvalidModule) {
			t.Errorf("%s's queued execution ended %+v, want failed as no longer valid", e.Caller, res)
		}
	}
	if n := len(f.service.requests()); n != 1 {
		t.Errorf("the service got %d calls, want 1 (alice's)", n)
	}
}
