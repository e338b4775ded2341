package api_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestAttackCancelRacesFinish: DELETEs sent by several goroutines at once
// while executions run, about when they end and after. Whichever wins, each record ends in one final state
// that agrees with itself (finished with its result, or cancelled without
// one), every DELETE answers 200, 202 or 409, and the callback of each goes
// out exactly once, carrying that final state.
func TestAttackCancelRacesFinish(t *testing.T) {
	recv := newHookReceiver(t, http.StatusOK)
	g := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries(), Workers: 2})
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range ids {
		// Each runs ~100 ms; its DELETEs come 0 to 130 ms after it is seen
		// running: before, about when, and after it ends.
		code := guest(`await new Promise((r) => setTimeout(r, 100)); console.log("done");`)
		id := g.submit(t, g.alice, map[string]any{"code": code, "callbackUrl": recv.URL + "/cb"})
		ids[i] = id
		g.await(t, g.alice, id, execution.StatusRunning)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Not a wait for an event: the attack is a DELETE at an
				// arbitrary moment of the run, so the delays are spread
				// over it on purpose (before, about when, and after it
				// ends); whichever order results, the checks hold.
				time.Sleep(time.Duration(i) * 12 * time.Millisecond)
				resp, body := g.call(t, g.alice, http.MethodDelete, "/executions/"+id, nil)
				switch resp.StatusCode {
				case http.StatusOK, http.StatusAccepted, http.StatusConflict:
				default:
					t.Errorf("DELETE %s = %d %s, want 200, 202 or 409", id, resp.StatusCode, body)
				}
			}()
		}
	}
	wg.Wait()
	final := map[string]string{}
	for _, id := range ids {
		cb := g.awaitCallback(t, id, execution.CallbackDelivered)
		_, rec := g.record(t, g.alice, id)
		final[id] = rec.Status
		if len(cb.Attempts) != 1 {
			t.Errorf("%s: callback attempts = %+v, want one", id, cb.Attempts)
		}
		switch {
		case rec.Status == execution.StatusFinished && rec.Result != nil && rec.Result.Stdout == "done":
		case rec.Status == execution.StatusCancelled && rec.Result == nil:
		default:
			t.Errorf("%s: record %+v, want finished with its result or cancelled without one", id, rec)
		}
	}
	states := map[string]int{}
	for _, st := range final {
		states[st]++
	}
	t.Logf("final states: %v", states)
	got := map[string]int{}
	for range recv.count() {
		h := <-recv.got
		var sent execution.Record
		if err := json.Unmarshal(h.body, &sent); err != nil || h.verifyErr != nil {
			t.Fatalf("callback %s: %v %v", h.body, err, h.verifyErr)
		}
		got[sent.ID]++
		if sent.Status != final[sent.ID] {
			t.Errorf("%s: callback carried status %s, record ended %s", sent.ID, sent.Status, final[sent.ID])
		}
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s: %d callbacks, want exactly 1", id, got[id])
		}
	}
}
