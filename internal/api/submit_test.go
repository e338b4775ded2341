package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestSubmitAsync runs a submission on the workers: the record goes from
// queued to finished with the result POST /execute would give.
func TestSubmitAsync(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{Workers: 2})
	id := g.submit(t, g.alice, map[string]any{
		"code":        guest(`console.log("async", env.KEY); return new Response(String(6 * 7));`),
		"secrets":     map[string]string{"KEY": "hidden-1234"},
		"callbackUrl": "https://example.com/hook?x=1",
	})
	rec := g.await(t, g.alice, id, execution.StatusFinished)
	if rec.Result == nil || !rec.Result.Success || rec.Result.ID != id || !strings.Contains(rec.Result.Stdout, "async") ||
		len(rec.Result.Logs) != 1 || !rec.Async || rec.CallbackURL != "https://example.com/hook?x=1" {
		t.Fatalf("record = %+v, result %+v %+v; want a successful async result with its log and callback", rec, rec.Result, rec.Result.Error)
	}
	if strings.Contains(rec.Result.Stdout, "hidden-1234") {
		t.Errorf("stored stdout shows the secret: %q", rec.Result.Stdout)
	}
	if e := <-g.finished; e.ID != id || e.CallbackURL != "https://example.com/hook?x=1" {
		t.Errorf("Finished hook got %s (callback %q), want %s", e.ID, e.CallbackURL, id)
	}
	stored, err := g.store.Get(t.Context(), "alice", id)
	if err != nil || stored.Request != nil {
		t.Errorf("stored request after the end = %q, %v; want deleted", stored.Request, err)
	}
}

// TestSubmitInvalid checks that a submission is validated as /execute
// validates, callbackUrl included, before anything is queued.
func TestSubmitInvalid(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	for _, cb := range []any{"ftp://example.com/x", "not a url", "/relative/path", "http://", "javascript:alert(1)",
		"https://user:pw@example.com/", 42, true, map[string]any{}} {
		resp, data := g.call(t, g.alice, http.MethodPost, "/executions", map[string]any{"code": guest(""), "callbackUrl": cb})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"callbackUrl"`) {
			t.Errorf("callbackUrl %v = %d %s, want 422 naming callbackUrl", cb, resp.StatusCode, data)
		}
	}
	resp, data := g.call(t, g.alice, http.MethodPost, "/executions", map[string]any{"code": guest(""), "timeoutMs": -1, "bogus": 1})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), "timeoutMs") || !strings.Contains(string(data), "bogus") {
		t.Errorf("invalid submission = %d %s, want 422 naming timeoutMs and bogus", resp.StatusCode, data)
	}
	if n, _ := g.store.CountQueued(t.Context()); n != 0 {
		t.Errorf("%d queued after invalid submissions, want 0", n)
	}
}

// TestQueueFull checks the bound on the queue: 503 with Retry-After.
func TestQueueFull(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{MaxQueued: 2})
	g.history.Drain()
	g.submit(t, g.alice, map[string]any{"code": guest("")})
	g.submit(t, g.bob, map[string]any{"code": guest("")})
	resp, data := g.call(t, g.alice, http.MethodPost, "/executions", map[string]any{"code": guest("")})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(data), execution.ProblemQueueFull) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("submission over the bound = %d (Retry-After %q) %s, want 503 queue_full with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
}

// TestQueuePerKey checks the per-key bound on the queue: past it that key
// gets 429 queue_limited with Retry-After; the other key still queues.
func TestQueuePerKey(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{MaxQueued: 10, MaxQueuedPerKey: 3})
	g.history.Drain()
	for range 3 {
		g.submit(t, g.alice, map[string]any{"code": guest("")})
	}
	resp, data := g.call(t, g.alice, http.MethodPost, "/executions", map[string]any{"code": guest("")})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(data), execution.ProblemQueueLimited) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("submission over the key's bound = %d (Retry-After %q) %s, want 429 queue_limited with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	for range 3 {
		g.submit(t, g.bob, map[string]any{"code": guest("")})
	}
}

// TestCancel cancels a queued and a running execution.
func TestCancel(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{Workers: 1})
	g.history.Drain()
	queued := g.submit(t, g.alice, map[string]any{"code": guest("")})
	resp, data := g.call(t, g.alice, http.MethodDelete, "/executions/"+queued, nil)
	var rec execution.Record
	_ = json.Unmarshal(data, &rec)
	if resp.StatusCode != http.StatusOK || rec.Status != execution.StatusCancelled || rec.FinishedAt == nil {
		t.Errorf("DELETE queued = %d %s, want 200 cancelled", resp.StatusCode, data)
	}
	if e := <-g.finished; e.ID != queued || e.Status != store.Cancelled {
		t.Errorf("Finished hook got %s %s, want %s cancelled", e.ID, e.Status, queued)
	}
	if resp, _ := g.call(t, g.alice, http.MethodDelete, "/executions/"+queued, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("DELETE cancelled = %d, want 409", resp.StatusCode)
	}

	g2 := newHistoryGateway(t, executions.RecordOptions{Workers: 1})
	running := g2.submit(t, g2.alice, map[string]any{
		"code":      guest(`console.log("started"); await new Promise(r => setTimeout(r, 60000));`),
		"timeoutMs": 30000,
	})
	events := g2.openEvents(t, g2.alice, running, "application/x-ndjson", "")
	defer events.Close()
	dec := json.NewDecoder(events)
	for seen := 0; seen < 2; seen++ { // start, then the log: it runs
		var ev map[string]any
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("reading events: %v", err)
		}
	}
	resp, data = g2.call(t, g2.alice, http.MethodDelete, "/executions/"+running, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE running = %d %s, want 202", resp.StatusCode, data)
	}
	rec = g2.await(t, g2.alice, running, execution.StatusCancelled)
	if rec.Result != nil || rec.FinishedAt == nil {
		t.Errorf("cancelled record = %+v, want an end time and no result", rec)
	}
	if _, err := io.ReadAll(events); err != nil {
		t.Errorf("the event stream of a cancelled execution did not end cleanly: %v", err)
	}
}

// TestSubmitTypeScript runs queued TypeScript, and one that does not parse:
// both end as POST /execute would end them.
func TestSubmitTypeScript(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{Workers: 1})
	ok := g.submit(t, g.alice, map[string]any{"language": "typescript",
		"code": `const n: number = 6 * 7; export default { fetch(): Response { console.log(String(n)); return new Response("ts"); } }`})
	bad := g.submit(t, g.alice, map[string]any{"language": "typescript", "code": `export default { fetch( { `})
	if rec := g.await(t, g.alice, ok, execution.StatusFinished); rec.Result == nil || !rec.Result.Success || rec.Result.Stdout != "42" {
		t.Errorf("TypeScript record = %+v, want success printing 42", rec.Result)
	}
	if rec := g.await(t, g.alice, bad, execution.StatusFinished); rec.Result == nil || rec.Result.Error == nil || rec.Result.Error.Code != execution.CodeSyntaxError {
		t.Errorf("unparsable TypeScript record = %+v, want syntax_error", rec.Result)
	}
}

// TestQueueDepthMetric: gateway_queue_depth says how many executions wait
// in the store's queue, read at each lease renewal.
func TestQueueDepthMetric(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{LeaseTTL: 600 * time.Millisecond})
	g.history.Drain() // no worker claims them
	for range 3 {
		g.submit(t, g.alice, map[string]any{"code": guest("")})
	}
	var last string
	if !testwait.Until(20*time.Second, func() bool {
		_, data := g.call(t, g.bob, http.MethodGet, "/metrics", nil)
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.HasPrefix(line, "gateway_queue_depth ") {
				last = line
			}
		}
		return last == "gateway_queue_depth 3"
	}) {
		t.Errorf("metrics say %q, want gateway_queue_depth 3", last)
	}
}
