package api_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestAttackEventStreamsBoundedPerKey: one key opens event streams on its
// running execution until refused. Each open stream holds a goroutine and
// reads the store every poll while the execution runs, so an unbounded
// number from one key is a cheap way to load the database; past
// executions.MaxEventStreamsPerKey the key gets 429 (SSE and NDJSON alike), while
// another key still opens its own, and closing one lets the first key open
// one again.
func TestAttackEventStreamsBoundedPerKey(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	id := g.submit(t, g.alice, map[string]any{"code": guest(`await new Promise((r) => setTimeout(r, 20000));`), "timeoutMs": 25000})
	bobID := g.submit(t, g.bob, map[string]any{"code": guest(`await new Promise((r) => setTimeout(r, 20000));`), "timeoutMs": 25000})
	g.await(t, g.alice, id, "running")
	var open []io.ReadCloser
	defer func() {
		for _, s := range open {
			s.Close()
		}
		g.call(t, g.alice, http.MethodDelete, "/executions/"+id, nil)
		g.call(t, g.bob, http.MethodDelete, "/executions/"+bobID, nil)
	}()
	accepts := []string{"text/event-stream", "application/x-ndjson"}
	for i := range executions.MaxEventStreamsPerKey {
		open = append(open, g.openEvents(t, g.alice, id, accepts[i%2], ""))
	}
	for range 2 {
		if code := g.eventsStatus(t, g.alice, id); code != http.StatusTooManyRequests {
			t.Errorf("stream %d of one key = %d, want 429", executions.MaxEventStreamsPerKey+1, code)
		}
	}
	open = append(open, g.openEvents(t, g.bob, bobID, "text/event-stream", ""))
	open[0].Close()
	open = open[1:]
	// The server sees the close at once or at its next poll: retry until then.
	for i := 0; ; i++ {
		if code := g.eventsStatus(t, g.alice, id); code == http.StatusOK {
			break
		} else if i == 200 {
			t.Fatalf("after closing a stream, a new one = %d, want 200", code)
		}
		g.await(t, g.alice, id, "running")
	}
}

// eventsStatus opens id's event stream as key and closes it at once,
// returning the status.
func (g *historyGateway) eventsStatus(t *testing.T, key, id string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, g.url+"/executions/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
