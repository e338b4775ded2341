package api_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const counterCode = `
let count = 0;
export default {
  async fetch(request) {
    count++;
    const id = await request.text();
    for (let i = 0; i < 3; i++) {
      console.log("exec " + id + " step " + i);
      await new Promise((r) => setTimeout(r, Math.random() * 15));
    }
    return new Response(String(count));
  },
};`

// runs numbers the reuse tests' runs: each run's isolates are its own, also
// when the tests run again in the same process (-count), where the shared
// gateway still holds the last run's warm isolates.
var runs atomic.Int64

// newSuite names a new run's isolates.
func newSuite() string { return fmt.Sprintf("reuse-%d", runs.Add(1)) }

func reuseBody(suite, id string, isolate string) map[string]any {
	return map[string]any{
		"code":    counterCode,
		"env":     map[string]any{"SUITE": suite},
		"isolate": isolate,
		"request": map[string]any{"method": "POST", "body": id},
	}
}

func TestReuseKeepsTheIsolateWarm(t *testing.T) {
	t.Parallel()
	suite := newSuite()
	first := execute(t, reuseBody(suite, "a", "reuse"))
	wantSuccess(t, first)
	second := execute(t, reuseBody(suite, "b", "reuse"))
	wantSuccess(t, second)
	if !second.Warm || second.Response.Body == "1" {
		t.Errorf("second reuse execution: warm %v, count %s; want a warm isolate whose state went on", second.Warm, second.Response.Body)
	}
	if second.Stdout != "exec b step 0\nexec b step 1\nexec b step 2" {
		t.Errorf("second stdout = %q", second.Stdout)
	}
	// A fresh execution of the same code never sees that state.
	fresh := execute(t, reuseBody(suite, "c", "fresh"))
	wantSuccess(t, fresh)
	if fresh.Warm || fresh.Response.Body != "1" {
		t.Errorf("fresh execution: warm %v, count %s; want a new isolate", fresh.Warm, fresh.Response.Body)
	}
	// Different env means a different isolate.
	other := reuseBody(suite, "d", "reuse")
	other["env"] = map[string]any{"SUITE": suite + "-other"}
	if res := execute(t, other); res.Warm || res.Response.Body != "1" {
		t.Errorf("other env: warm %v, count %s; want its own isolate", res.Warm, res.Response.Body)
	}
}

func TestReuseConcurrentExecutionsKeepTheirLogs(t *testing.T) {
	t.Parallel()
	suite := newSuite()
	execute(t, reuseBody(suite, "warmup", "reuse"))
	const n = 20
	var wg sync.WaitGroup
	warm := 0
	var mu sync.Mutex
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("c%02d", i)
			res := execute(t, reuseBody(suite, id, "reuse"))
			if !res.Success {
				t.Errorf("%s: %+v", id, res.Error)
				return
			}
			want := fmt.Sprintf("exec %[1]s step 0\nexec %[1]s step 1\nexec %[1]s step 2", id)
			if res.Stdout != want {
				t.Errorf("%s: stdout = %q, want only its own lines", id, res.Stdout)
			}
			if res.Warm {
				mu.Lock()
				warm++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if warm < n/2 {
		t.Errorf("%d of %d executions ran warm, want most", warm, n)
	}
}

func TestReuseTopLevelLogsBelongToTheFirst(t *testing.T) {
	t.Parallel()
	code := `console.log("loading once"); export default { fetch() { console.log("run"); return new Response("ok"); } }`
	body := map[string]any{"code": code, "isolate": "reuse", "env": map[string]any{"T": newSuite()}}
	first := execute(t, body)
	second := execute(t, body)
	if first.Stdout != "loading once\nrun" || second.Stdout != "run" || !second.Warm {
		t.Errorf("first %q, second %q (warm %v)", first.Stdout, second.Stdout, second.Warm)
	}
	if strings.Contains(second.Stdout, "loading") {
		t.Error("the top-level log of the first execution leaked into the second")
	}
}

func TestReuseRecordsOutboundPerExecution(t *testing.T) {
	t.Parallel()
	body := func(target string) map[string]any {
		return map[string]any{
			"code":          `export default { async fetch(r) { try { await fetch(await r.text()); } catch (e) { console.log(e.message); } return new Response("ok"); } }`,
			"isolate":       "reuse",
			"allowOutbound": true,
			"request":       map[string]any{"method": "POST", "body": target},
		}
	}
	for _, target := range []string{"http://10.0.0.1/first", "http://127.0.0.1/second"} {
		res := execute(t, body(target))
		wantSuccess(t, res)
		if len(res.Outbound) != 1 || res.Outbound[0].URL != target || !res.Outbound[0].Denied {
			t.Errorf("outbound = %+v, want only this execution's denied request to %s", res.Outbound, target)
		}
	}
}
