package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
)

// countingBackend counts the runs of each execution id on the real backend.
type countingBackend struct {
	execution.Backend
	mu   sync.Mutex
	runs map[string]int
}

func (b *countingBackend) Execute(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	b.mu.Lock()
	b.runs[job.ID]++
	b.mu.Unlock()
	return b.Backend.Execute(ctx, job, emit)
}

// TestTwoGatewaysOnePostgres runs two gateways on one PostgreSQL database
// (the test starts a real server): executions submitted to either are each
// run exactly once, and both gateways run some.
func TestTwoGatewaysOnePostgres(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the two-gateway test: %v", err)
	}
	gatewayURL(t)
	backend := &countingBackend{Backend: shared.backend, runs: map[string]int{}}
	gws, key := pgGateways(t, pg, backend)
	const n = 40
	var ids []string
	for i := range n {
		g := gws[i%2]
		ids = append(ids, g.submit(t, key, map[string]any{
			"code": guest(fmt.Sprintf(`await new Promise((r) => setTimeout(r, 50)); return new Response("r%d");`, i)),
		}))
	}
	ranOn := map[string]int{}
	for i, id := range ids {
		rec := gws[(i+1)%2].await(t, key, id, execution.StatusFinished) // read through the other gateway
		if rec.Result == nil || rec.Result.Response == nil || rec.Result.Response.Body != fmt.Sprintf("r%d", i) {
			t.Errorf("%s: result %+v, want r%d", id, rec.Result, i)
		}
		e, err := gws[0].store.Get(t.Context(), "ci", id)
		if err != nil {
			t.Fatal(err)
		}
		ranOn[e.Owner]++
		if e.Attempts != 1 {
			t.Errorf("%s claimed %d times, want once", id, e.Attempts)
		}
		resp, data := gws[0].call(t, key, http.MethodGet, "/executions/"+id+"/events", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("events = %d", resp.StatusCode)
		}
		var results int
		for _, line := range splitLines(data) {
			var ev struct{ Type string }
			_ = json.Unmarshal(line, &ev)
			if ev.Type == execution.EventResult {
				results++
			}
		}
		if results != 1 {
			t.Errorf("%s has %d result events, want 1", id, results)
		}
	}
	backend.mu.Lock()
	defer backend.mu.Unlock()
	for _, id := range ids {
		if backend.runs[id] != 1 {
			t.Errorf("%s ran %d times on the runtime, want once", id, backend.runs[id])
		}
	}
	if ranOn[gws[0].history.Owner()] == 0 || ranOn[gws[1].history.Owner()] == 0 {
		t.Errorf("executions ran per gateway: %v; want both to have run some", ranOn)
	}
}

// pgGateways starts two gateways with records on one new database of pg,
// on backend, with one API key for both.
func pgGateways(t *testing.T, pg *storetest.Postgres, backend execution.Backend, tweak ...func(*auth.Key)) ([]*historyGateway, string) {
	t.Helper()
	return pgGatewaysWith(t, pg, backend, executions.Quota{}, tweak...)
}

// pgGatewaysWith is pgGateways with quota as the default quota.
func pgGatewaysWith(t *testing.T, pg *storetest.Postgres, backend execution.Backend, quota executions.Quota, tweak ...func(*auth.Key)) ([]*historyGateway, string) {
	t.Helper()
	gatewayURL(t)
	url := pg.NewDatabase(t)
	key, entry := apitest.NewKey(t, "ci")
	for _, f := range tweak {
		f(&entry)
	}
	var gws []*historyGateway
	for range 2 {
		st, err := store.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		cb := fastRetries()
		cb.Secret = func(string) []byte { return callbackSecret }
		t.Cleanup(func() { st.Close() })
		o := apitest.Options()
		o.Quota = quota
		o.Keys = auth.NewKeyring([]auth.Key{entry})
		o.Store, o.Records = st, executions.RecordOptions{Workers: 2, Poll: 20 * time.Millisecond, Callbacks: cb}
		handler, h := apitest.Handler(t, zerolog.Nop(), backend, o)
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		gws = append(gws, &historyGateway{url: srv.URL, history: h, store: st, alice: key})
	}
	return gws, key
}

// TestFollowAcrossGateways follows, through one gateway, an execution that
// runs on the other (PostgreSQL): its events arrive live, by polling, all
// of them once.
func TestFollowAcrossGateways(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	gatewayURL(t)
	gws, key := pgGateways(t, pg, shared.backend)
	gws[1].history.Drain() // only the first runs it
	id := gws[0].submit(t, key, map[string]any{"code": guest(`
for (let i = 0; i < 10; i++) { console.log("x" + i); await new Promise((r) => setTimeout(r, 30)); }`)})
	events := gws[1].openEvents(t, key, id, "text/event-stream", "")
	defer events.Close()
	got := readEvents(t, events, true, 0)
	if len(got) != 12 || got[0].typ != execution.EventStart || got[11].typ != execution.EventResult {
		t.Fatalf("events through the other gateway = %v, want start, 10 logs, result", got)
	}
	for i, ev := range got {
		if ev.id != int64(i+1) {
			t.Errorf("event %d has id %d, want %d", i, ev.id, i+1)
		}
	}
}

func splitLines(data []byte) [][]byte {
	return bytes.Split(bytes.TrimSpace(data), []byte("\n"))
}

// TestQueuePerKeyTwoGateways sends a burst of one key's submissions to two
// gateways on one PostgreSQL database at once: exactly the key's bound is
// queued, every other submission is 429 queue_limited.
func TestQueuePerKeyTwoGateways(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	const bound, burst = 3, 16
	gws, key := pgGateways(t, pg, shared.backend, func(k *auth.Key) { k.MaxQueued = bound })
	for _, g := range gws {
		g.history.Drain()
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			resp, _ := gws[i%2].call(t, key, http.MethodPost, "/executions", map[string]any{"code": guest("")})
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[http.StatusAccepted] != bound || statuses[http.StatusTooManyRequests] != burst-bound {
		t.Errorf("statuses of a burst of %d = %v, want %d × 202 and the rest 429", burst, statuses, bound)
	}
	if n, err := gws[0].store.CountQueued(t.Context()); err != nil || n != bound {
		t.Errorf("CountQueued = %d, %v; want %d", n, err, bound)
	}
}
