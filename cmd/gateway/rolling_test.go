package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestRollingRestart restarts two gateways (the real binary) on one
// PostgreSQL database one after the other with SIGTERM, under steady
// synchronous and queued load sent as a load balancer would (to the next
// gateway when one refuses or is down): every synchronous execution
// answered succeeds, and every queued one finishes once, successfully,
// none lost and none runtime_crashed; the long ones that outlast a grace
// are handed to the other gateway.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	bin := sharedGateway(t)
	const workers = 4 // per gateway
	// long outlasts the grace and the seconds the runtime has to stop.
	const long = 5000
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	env := []string{
		"GATEWAY_RUNTIME_WORKERD=" + loadertest.Workerd(t),
		"GATEWAY_RUNTIME_PROCESSES=1",
		"GATEWAY_STORAGE_URL=" + pg.NewDatabase(t),
		"GATEWAY_HTTP_SHUTDOWN_GRACE=1s",
		"GATEWAY_HTTP_SHUTDOWN_DELAY=500ms",
		fmt.Sprintf("GATEWAY_STORAGE_WORKERS=%d", workers),
	}
	gws := []*process{startProcess(t, bin, env...), startProcess(t, bin, env...)}
	lb := &balancer{bases: []string{gws[0].base, gws[1].base}}
	stop := make(chan struct{})
	var load sync.WaitGroup
	var mu sync.Mutex
	var queued []string
	answers := map[string]int{} // to synchronous executions, by outcome
	load.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			id := lb.submit(t, rollingGuest(i, 100))
			mu.Lock()
			queued = append(queued, id)
			mu.Unlock()
		}
	})
	for range 2 {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				outcome := lb.execute(t, rollingGuest(i, 20))
				mu.Lock()
				answers[outcome]++
				mu.Unlock()
			}
		})
	}
	for i := range gws {
		// Every worker busy, most with long executions: some outlast the
		// grace of gateway i, which then stops and comes back.
		for j := range workers * len(gws) {
			id := lb.submit(t, rollingGuest(-j, long))
			mu.Lock()
			queued = append(queued, id)
			mu.Unlock()
		}
		waitRunning(t, gws[i], workers*len(gws))
		if err := gws[i].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-gws[i].done; err != nil {
			t.Errorf("gateway %d after SIGTERM: %v", i, err)
		}
		gws[i] = startProcess(t, bin, env...)
		lb.set(i, gws[i].base)
	}
	close(stop)
	load.Wait()
	handedBack := 0
	for _, id := range queued {
		rec := awaitStatus(t, gws[0], id, execution.StatusFinished)
		if rec.Result == nil || !rec.Result.Success || rec.Result.Response == nil || rec.Result.Response.Body != "done" {
			t.Errorf("%s ended %+v, want success", id, rec.Result)
		}
		counts := eventCounts(t, gws[0].base, id)
		if counts["start"] != 1 || counts["result"] != 1 {
			t.Errorf("%s events %v, want one start and one result", id, counts)
		}
		handedBack += counts["restart"]
	}
	t.Logf("%d queued executions finished, %d of them after a hand-back; synchronous answers %v", len(queued), handedBack, answers)
	if len(answers) != 1 || answers["success"] == 0 {
		t.Errorf("synchronous answers %v, want successes only", answers)
	}
	if handedBack == 0 {
		t.Error("no queued execution was handed back: the test proves less than it should")
	}
	for _, g := range gws {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		<-g.done
	}
}

// rollingGuest logs, waits ms, and answers "done"; i makes each code its own.
func rollingGuest(i, ms int) string {
	return fmt.Sprintf(`export default { async fetch() {
  console.log("run %d");
  await new Promise((r) => setTimeout(r, %d));
  return new Response("done");
} }`, i, ms)
}

// waitRunning waits until n executions run (g lists those of every
// gateway on its database).
func waitRunning(t *testing.T, g *process, n int) {
	t.Helper()
	if !testwait.Until(60*time.Second, func() bool {
		var page execution.RecordList
		getJSON(t, g.base+"/executions?status=running&limit=100", &page)
		return len(page.Executions) >= n
	}) {
		t.Fatalf("%d executions did not run within 60s:\n%s", n, g.stdout.String())
	}
}

// balancer sends each request to a gateway, and to the next one while a
// gateway refuses it (503) or is down, as a load balancer does.
type balancer struct {
	mu    sync.Mutex
	bases []string
	next  int
}

func (b *balancer) set(i int, base string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bases[i] = base
}

// send posts body to path on one gateway after another until one answers
// other than 503; it returns that answer. The 10 ms pauses are a load
// balancer's retry backoff, not an ordering of events: what a retry waits
// for is another process restarting, which signals nothing the test could
// wait on (the outcomes checked do not depend on their length).
func (b *balancer) send(t *testing.T, path, body string) (int, []byte) {
	for range 2000 { // a hang guard: 503s and refusals end when a gateway is back
		b.mu.Lock()
		base := b.bases[b.next%len(b.bases)]
		b.next++
		b.mu.Unlock()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return resp.StatusCode, data
	}
	t.Errorf("POST %s: no gateway took it", path)
	return 0, nil
}

// submit queues code and returns its id.
func (b *balancer) submit(t *testing.T, code string) string {
	body, _ := json.Marshal(map[string]any{"code": code})
	status, data := b.send(t, "/executions", string(body))
	var acc execution.Accepted
	if err := json.Unmarshal(data, &acc); status != http.StatusAccepted || err != nil {
		t.Errorf("POST /executions = %d %s", status, data)
	}
	return acc.ID
}

// execute runs code and returns its outcome: success, an error code, or
// the status of a refusal.
func (b *balancer) execute(t *testing.T, code string) string {
	body, _ := json.Marshal(map[string]any{"code": code})
	status, data := b.send(t, "/execute", string(body))
	var res execution.Result
	if status != http.StatusOK || json.Unmarshal(data, &res) != nil {
		return fmt.Sprintf("%d %s", status, data)
	}
	if res.Error != nil {
		return string(res.Error.Code)
	}
	return "success"
}
