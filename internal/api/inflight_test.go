package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// awaitJS waits 5 s on a timer: it holds an isolate and no CPU.
const awaitJS = `export default { async fetch() { await new Promise((r) => setTimeout(r, 5000)); return new Response("waited"); } }`

// TestInFlightQueueThenRefuse: 400 executions awaiting 5 s, sent at once
// through the API to one runtime process whose memory admits far fewer
// (256 MiB: some tens of isolates) with a queue of 50. Each gets its
// result (success: none admitted fails) or 503 runtime_unavailable with a
// Retry-After; there are some of each (the ones that could not wait were
// refused, and not lost); more ran at once than the old fixed 16; the
// process was never lost; and the gateway then runs another execution.
// Not parallel: hundreds of isolates starting at once would starve the
// package's timing-sensitive tests of CPU.
func TestInFlightQueueThenRefuse(t *testing.T) {
	log := zerolog.Nop()
	pool := loadertest.StartLocal(t, log, loadertest.Processes(1), func(c *local.Config) {
		c.MemoryLimit = 256 << 20
		c.QueueSize, c.QueueTimeout = 50, 2*time.Minute
	})
	srv := httptest.NewServer(apitest.Serve(t, log, pool, apitest.Gateway{Options: api.Options{MaxRequestBytes: testMaxBody}, Limits: testLimits, Now: func() time.Time { return testNow }}))
	t.Cleanup(func() {
		srv.Close()
		pool.Close()
	})
	pid := pool.PIDs()[0]
	const n = 400
	body, _ := json.Marshal(map[string]any{"code": awaitJS, "timeoutMs": 30000})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	outcomes := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			outcomes[i] = inflightOutcome(client, srv.URL, body)
		})
	}
	close(start)
	wg.Wait()
	count := map[string]int{}
	for _, o := range outcomes {
		count[o]++
	}
	if count["success"]+count["refused"] != n || count["success"] == 0 || count["refused"] == 0 {
		t.Errorf("outcomes = %v, want only success and refused (503 with Retry-After), some of each", count)
	}
	_, peak := pool.InFlight()
	t.Logf("outcomes %v, at most %d running at once", count, peak)
	if peak <= 16 {
		t.Errorf("peak InFlight() = %d, want more than 16 waiting at once", peak)
	}
	if got := pool.PIDs(); len(got) != 1 || got[0] != pid {
		t.Errorf("PIDs() = %v (was %d): the process was lost under load", got, pid)
	}
	if res := executeAt(t, srv.URL, map[string]any{"code": okJS}); !res.Success {
		t.Errorf("an execution after the burst = %+v, want success", res.Error)
	}
}

// inflightOutcome posts body to base's /execute and names how it ended:
// success, refused (503 runtime_unavailable with a Retry-After of at least
// a second), or what else it was.
func inflightOutcome(client *http.Client, base string, body []byte) string {
	resp, err := client.Post(base+"/execute", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return "transport error: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		var p api.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		if after, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || after < 1 || p.Code != "runtime_unavailable" {
			return "503 " + p.Code + " Retry-After " + resp.Header.Get("Retry-After")
		}
		return "refused"
	}
	data, _ := io.ReadAll(resp.Body)
	var res execution.Result
	if err := json.Unmarshal(data, &res); err != nil || resp.StatusCode != http.StatusOK {
		return "HTTP " + strconv.Itoa(resp.StatusCode) + ": " + string(data)
	}
	switch {
	case res.Error != nil:
		return string(res.Error.Code)
	case !res.Success || res.Response == nil || res.Response.Body != "waited":
		return "not the guest's answer"
	}
	return "success"
}
