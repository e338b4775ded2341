package loader_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestCloudflareTailsReusedIsolates: on the cloudflare backend every guest
// isolate gets the shim's Tail, a reused one too (before, only fresh ones
// did, so a reused isolate stopped by Cloudflare's limits was never
// explained). Run against the shim in a workerd standing in for the
// deployed Worker: after executions in reused isolates only, the shim's
// Tail has reports of them (nobody asks for them, since each ended with its
// result, so they are kept a few seconds and counted by /stats), each with
// the time its invocation started, without which a reused isolate's report
// could never be told from an earlier execution's.
func TestCloudflareTailsReusedIsolates(t *testing.T) {
	t.Parallel()
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { deployed.Close() })
	shimURL, secret := deployed.ShimURL()
	cf := cloudflareOverTLS(t, startTLSProxy(t, shimURL), secret)
	if n, _ := tailReports(t, deployed); n != 0 {
		t.Fatalf("the shim holds %d tail reports before any execution", n)
	}
	const runs = 3
	for i := range runs {
		j := loadertest.Job(fmt.Sprintf("tail-reuse-%d", i), `export default { fetch() { return new Response("ok") } }`, 10*time.Second)
		j.ReuseKey = "r_tail"
		if res := loadertest.Result(t, cf, j); !res.Success {
			t.Fatalf("execution %d: %+v", i, res)
		}
	}
	// The tail reports after the invocation ends, to the shim and to
	// nothing the test can wait on: poll its count (the reports are kept 5 s).
	n, timed := 0, 0
	testwait.Until(4*time.Second, func() bool {
		n, timed = tailReports(t, deployed)
		return n >= runs
	})
	if n < runs || timed != n {
		t.Errorf("the shim's Tail has %d reports (%d with a time) after %d executions in a reused isolate, want one each, all timed", n, timed, runs)
	}
}

// tailReports asks the shim how many tail reports it holds unasked for,
// and how many of them carry their invocation's start.
func tailReports(t *testing.T, l *local.Pool) (held, timed int) {
	t.Helper()
	resp := loadertest.ShimCall(t, l, "/stats", nil)
	var stats struct {
		TailReports *struct{ Held, Timed int } `json:"tailReports"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || stats.TailReports == nil {
		t.Fatalf("/stats: %v, tailReports %v", err, stats.TailReports)
	}
	return stats.TailReports.Held, stats.TailReports.Timed
}
