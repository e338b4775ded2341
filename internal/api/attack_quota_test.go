package api_test

import (
	"fmt"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
)

// withKey changes the attack fixture's key name with change.
func withKey(name string, change func(*auth.Key)) func(*apitest.Gateway) {
	return func(o *apitest.Gateway) {
		keys := o.Keys.All()
		for i := range keys {
			if keys[i].Name == name {
				change(&keys[i])
			}
		}
		o.Keys = auth.NewKeyring(keys)
	}
}

// TestAttackQueuedConcurrency: a key's concurrency quota did not apply to
// its queued executions, so a key limited to 1 ran as many as there were
// workers through POST /executions. Here alice (concurrency 1) queues 4
// held executions on 2 workers: the second worker leaves hers queued and
// runs bob's; her synchronous /execute is refused while one of hers runs;
// and her records' running times never overlap.
func TestAttackQueuedConcurrency(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, withKey("alice", func(k *auth.Key) { k.Concurrency = 1 }))
	hold := func(name string) map[string]any {
		return map[string]any{"code": guest(`await env.reader.fetch("hold/` + name + `");`), "capabilities": []string{"reader"}}
	}
	var ids []string
	for i := range 4 {
		ids = append(ids, f.submit(t, f.alice, hold(fmt.Sprintf("a%d", i))))
	}
	f.wantArrival(t, "a0")
	bob := f.submit(t, f.bob, hold("b0"))
	f.wantArrival(t, "b0") // not a1: the free worker skips alice's backlog
	resp, data := f.call(t, f.alice, http.MethodPost, "/execute", map[string]any{"code": guest("")})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(data), execution.ProblemConcurrencyLimited) {
		t.Errorf("alice's /execute while her queued one runs = %d %s, want 429 concurrency_limited", resp.StatusCode, data)
	}
	for i := range 3 {
		f.service.release(fmt.Sprintf("a%d", i))
		f.wantArrival(t, fmt.Sprintf("a%d", i+1))
	}
	f.service.releaseAll()
	var recs []execution.Record
	for _, id := range ids {
		recs = append(recs, f.await(t, f.alice, id, execution.StatusFinished))
	}
	f.await(t, f.bob, bob, execution.StatusFinished)
	slices.SortFunc(recs, func(a, b execution.Record) int { return a.StartedAt.Compare(*b.StartedAt) })
	for i := 1; i < len(recs); i++ {
		if recs[i].StartedAt.Before(*recs[i-1].FinishedAt) {
			t.Errorf("%s started at %v, before %s finished at %v: two of alice's ran at once",
				recs[i].ID, recs[i].StartedAt, recs[i-1].ID, recs[i-1].FinishedAt)
		}
	}
}

// TestAttackQueueOneKey: one key could fill the whole queue, and every
// other key got 503 queue_full. A key past its own bound (here its
// auth.Key.MaxQueued of 2) gets 429 queue_limited with Retry-After, and
// the other key still queues.
func TestAttackQueueOneKey(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, withKey("alice", func(k *auth.Key) { k.MaxQueued = 2 }))
	f.history.Drain()
	for range 2 {
		f.submit(t, f.alice, map[string]any{"code": guest("")})
	}
	for _, body := range []map[string]any{
		{"code": guest("")},
		{"code": guest(""), "timeoutMs": 1000},
		{"code": guest(""), "capabilities": []string{"reader"}},
	} {
		resp, data := f.call(t, f.alice, http.MethodPost, "/executions", body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(data), execution.ProblemQueueLimited) ||
			resp.Header.Get("Retry-After") == "" {
			t.Errorf("alice past her bound = %d (Retry-After %q) %s, want 429 queue_limited with Retry-After",
				resp.StatusCode, resp.Header.Get("Retry-After"), data)
		}
	}
	for range 3 {
		f.submit(t, f.bob, map[string]any{"code": guest("")})
	}
}
