package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestAttackKillMidCapabilityCall: a queued execution counted as safe to
// run again when it allowed no network, whatever capabilities it had:
// killed mid-run, it ran again, POST /api/orders reached the operator's
// service twice, and its record listed one call. The real binary, killed
// with SIGKILL while the guest waits after its call, then restarted: with
// the default retry policy the call is made once and the record, ended
// runtime_crashed, lists it; with retry "always" (the request says it is
// idempotent) it runs again and the record lists the calls of both runs,
// each with its run.
func TestAttackKillMidCapabilityCall(t *testing.T) {
	bin := buildGateway(t)
	for _, tt := range []struct {
		retry string
		calls int // calls the service gets in all
	}{
		{"", 1},
		{execution.RetryAuto, 1},
		{execution.RetryAlways, 2},
	} {
		t.Run("retry="+tt.retry, func(t *testing.T) {
			var orders atomic.Int32
			svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/api/orders" {
					orders.Add(1)
				}
				w.WriteHeader(http.StatusCreated)
			}))
			t.Cleanup(svc.Close)
			caps, _ := json.Marshal(map[string]any{"orders": map[string]any{"url": svc.URL + "/api/", "methods": []string{"POST"}, "max_calls": 5}})
			env := []string{
				"GATEWAY_STORAGE_PATH=" + filepath.Join(t.TempDir(), "executions.db"),
				"GATEWAY_RUNTIME_WORKERD=" + loadertest.Workerd(t),
				"GATEWAY_RUNTIME_PROCESSES=1",
				"GATEWAY_CAPABILITIES=" + string(caps),
			}
			g := startProcess(t, bin, env...)
			req := map[string]any{
				"code": `export default { async fetch(req, env) {
  const r = await env.orders.fetch("/api/orders", { method: "POST", body: "{}" });
  console.log("ordered", r.status);
  await new Promise((r) => setTimeout(r, 3000));
  return new Response("done");
} }`,
				"capabilities": []string{"orders"},
				"timeoutMs":    10000,
			}
			if tt.retry != "" {
				req["retry"] = tt.retry
			}
			id := submit(t, g.base, req)
			if !testwait.Until(30*time.Second, func() bool { return orders.Load() == 1 }) {
				t.Fatalf("the guest's call never reached the service:\n%s", g.stdout.String())
			}
			// The call is announced before it goes out; the kill comes once
			// the announcement is stored.
			db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(env[0], "GATEWAY_STORAGE_PATH=")+"?mode=ro&_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if !testwait.Until(30*time.Second, func() bool {
				var n int
				_ = db.QueryRow(`SELECT COUNT(*) FROM execution_events WHERE execution_id = ? AND type = 'outbound'`, id).Scan(&n)
				return n == 1
			}) {
				t.Fatalf("the call's announcement was never stored:\n%s", g.stdout.String())
			}
			if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-g.done
			g = startProcess(t, bin, env...)
			var rec execution.Record
			if !testwait.Until(60*time.Second, func() bool {
				getJSON(t, g.base+"/executions/"+id, &rec)
				return rec.Status == execution.StatusFinished
			}) {
				t.Fatalf("%s did not finish after the restart: %+v\n%s", id, rec, g.stdout.String())
			}
			if n := int(orders.Load()); n != tt.calls {
				t.Errorf("the service got %d POST /api/orders, want %d", n, tt.calls)
			}
			res := rec.Result
			if res == nil {
				t.Fatal("finished without a result")
			}
			var runs []int
			for _, o := range res.Outbound {
				if o.Capability != "orders" || o.Method != http.MethodPost || o.URL != "/api/orders" {
					t.Errorf("outbound %+v, want POST /api/orders through orders", o)
				}
				runs = append(runs, o.Run)
			}
			switch tt.calls {
			case 1:
				if res.Error == nil || res.Error.Code != execution.CodeRuntimeCrashed || len(runs) != 1 || runs[0] != 1 {
					t.Errorf("result %+v (outbound runs %v), want runtime_crashed listing the one call of run 1", res.Error, runs)
				}
			default:
				if !res.Success || len(runs) != 2 || runs[0] != 1 || runs[1] != 2 || res.Outbound[1].Status != http.StatusCreated {
					t.Errorf("result %+v, outbound %+v; want success, the call of run 1 and the call of run 2 (answered 201)", res.Error, res.Outbound)
				}
			}
			g.cmd.Process.Signal(syscall.SIGTERM)
			<-g.done
		})
	}
}
