package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// waitCode is a guest that waits until its execution is cancelled.
var waitCode = guest(`await new Promise((r) => setTimeout(r, 25000));`)

// problemCode is the code of a problem answer's body ("" if none).
func problemCode(data []byte) string {
	var p struct{ Code string }
	_ = json.Unmarshal(data, &p)
	return p.Code
}

// TestFleetConcurrency: two gateways on one PostgreSQL hold one key to its
// concurrency quota in total: with a queued execution running on one and a
// synchronous one on each, the key's next execution is refused on both;
// when one ends, the next is taken.
func TestFleetConcurrency(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	const limit = 3
	gatewayURL(t) // starts the shared runtime
	gws, key := pgGateways(t, pg, shared.backend, func(k *auth.Key) { k.Concurrency = limit })
	id := gws[1].submit(t, key, map[string]any{"code": waitCode, "timeoutMs": 28000})
	gws[1].await(t, key, id, execution.StatusRunning)
	first := holdSync(t, gws[0], key)
	holdSync(t, gws[1], key)
	for i, g := range gws {
		resp, data := g.call(t, key, http.MethodPost, "/execute", map[string]any{"code": guest("")})
		if resp.StatusCode != http.StatusTooManyRequests || problemCode(data) != execution.ProblemConcurrencyLimited {
			t.Errorf("gateway %d: POST /execute with %d running on the two = %d %s, want 429 concurrency_limited", i, limit, resp.StatusCode, data)
		}
	}
	first() // one ends: its slot is free for the next, on either gateway
	var status int
	if !testwait.Until(20*time.Second, func() bool {
		resp, _ := gws[1].call(t, key, http.MethodPost, "/execute", map[string]any{"code": guest("")})
		status = resp.StatusCode
		return status == http.StatusOK
	}) {
		t.Errorf("POST /execute after one of %d ended = %d, want 200", limit, status)
	}
	gws[1].call(t, key, http.MethodDelete, "/executions/"+id, nil) // where it runs: stopped at once
	gws[1].await(t, key, id, execution.StatusCancelled)
}

// holdSync starts a synchronous execution of key's on g that waits, and
// returns once it runs; the returned function ends it (its client hangs
// up), as does the test's end.
func holdSync(t *testing.T, g *historyGateway, key string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	body, _ := json.Marshal(map[string]any{"code": waitCode, "timeoutMs": 28000})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/execute", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || !strings.Contains(line, `"type":"start"`) {
		t.Fatalf("POST /execute = %d, first line %q, %v; want 200 and its start", resp.StatusCode, line, err)
	}
	return cancel
}

// TestFleetRate: two gateways on one PostgreSQL hold one key to its
// request quota in total: of a burst spread over both, exactly the quota
// runs; the rest, and submissions to the queue after it, are 429
// rate_limited on either gateway.
func TestFleetRate(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	const quota, burst = 5, 12
	gatewayURL(t)
	gws, key := pgGatewaysWith(t, pg, shared.backend, executions.Quota{Requests: quota, Window: time.Hour})
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			resp, data := gws[i%2].call(t, key, http.MethodPost, "/execute", map[string]any{"code": guest("")})
			mu.Lock()
			defer mu.Unlock()
			answers[http.StatusText(resp.StatusCode)+" "+problemCode(data)]++
		})
	}
	wg.Wait()
	if answers["OK "] != quota || answers["Too Many Requests "+execution.ProblemRateLimited] != burst-quota {
		t.Errorf("a burst of %d over two gateways, quota %d: %v; want %d OK and the rest rate_limited", burst, quota, answers, quota)
	}
	for i, g := range gws {
		resp, data := g.call(t, key, http.MethodPost, "/executions", map[string]any{"code": guest("")})
		if resp.StatusCode != http.StatusTooManyRequests || problemCode(data) != execution.ProblemRateLimited ||
			resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Limit") != "5" {
			t.Errorf("gateway %d: POST /executions past the quota = %d %s (Retry-After %q, X-RateLimit-Limit %q), want 429 rate_limited with both",
				i, resp.StatusCode, data, resp.Header.Get("Retry-After"), resp.Header.Get("X-RateLimit-Limit"))
		}
	}
}

// TestFleetQueueShare: two gateways on one PostgreSQL hold one key to its
// share of the queue in total: with one execution running (its
// concurrency) and its max_queued waiting, submitted to both, the next
// submission is 429 queue_limited on either gateway; once they are
// cancelled it queues again.
func TestFleetQueueShare(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	const share = 2
	gatewayURL(t)
	gws, key := pgGateways(t, pg, shared.backend, func(k *auth.Key) { k.Concurrency, k.MaxQueued = 1, share })
	running := gws[0].submit(t, key, map[string]any{"code": waitCode, "timeoutMs": 28000})
	gws[0].await(t, key, running, execution.StatusRunning)
	ids := []string{running}
	for i := range share {
		ids = append(ids, gws[i%2].submit(t, key, map[string]any{"code": guest("")}))
	}
	for i, g := range gws {
		resp, data := g.call(t, key, http.MethodPost, "/executions", map[string]any{"code": guest("")})
		if resp.StatusCode != http.StatusTooManyRequests || problemCode(data) != execution.ProblemQueueLimited {
			t.Errorf("gateway %d: POST /executions with %d queued on the two = %d %s, want 429 queue_limited", i, share, resp.StatusCode, data)
		}
	}
	for _, id := range slices.Backward(ids) { // the queued ones first: none then starts
		gws[1].call(t, key, http.MethodDelete, "/executions/"+id, nil)
		gws[1].await(t, key, id, execution.StatusCancelled)
	}
	if id := gws[1].submit(t, key, map[string]any{"code": guest("")}); id == "" {
		t.Error("POST /executions after the queue emptied: no id")
	}
}
