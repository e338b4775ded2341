package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestHandoffOnSIGTERM stops a gateway (the real binary) with SIGTERM while
// it runs, with a grace shorter than its executions, on SQLite and on
// PostgreSQL. From the signal on it answers /readyz with 503 and new
// executions with 503 and Retry-After, and still serves reads. When the
// grace is over: a queued execution that may run again goes back to the
// queue (a restart event, its run not counted) and finishes on the next
// gateway (the same file restarted; the other gateway on the database); a
// queued one that made a capability call finishes here first, its call
// made once; a synchronous one still running ends runtime_crashed, with no
// call made (safe to retry). None of the queued ones ends runtime_crashed.
func TestHandoffOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := sharedGateway(t)
	for _, storage := range []string{"sqlite", "postgres"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			handoff(t, bin, storage)
		})
	}
}

func handoff(t *testing.T, bin, storage string) {
	var orders atomic.Int32
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orders.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(svc.Close)
	caps, _ := json.Marshal(map[string]any{"orders": map[string]any{"url": svc.URL + "/api/", "methods": []string{"POST"}}})
	env := []string{
		"GATEWAY_RUNTIME_WORKERD=" + loadertest.Workerd(t),
		"GATEWAY_RUNTIME_PROCESSES=1",
		"GATEWAY_CAPABILITIES=" + string(caps),
		"GATEWAY_HTTP_SHUTDOWN_GRACE=1500ms",
		"GATEWAY_HTTP_SHUTDOWN_DELAY=500ms",
	}
	location := filepath.Join(t.TempDir(), "executions.db")
	if storage == "sqlite" {
		env = append(env, "GATEWAY_STORAGE_PATH="+location)
	} else {
		pg, err := storetest.SharedPostgres()
		if err != nil {
			t.Fatalf("PostgreSQL for the test: %v", err)
		}
		location = pg.NewDatabase(t)
		env = append(env, "GATEWAY_STORAGE_URL="+location)
	}
	a := startProcess(t, bin, env...)
	// The queued ones wait until fixed times: the first run of "queued"
	// is still waiting when its gateway hands it back (after "called" has
	// finished, well past the grace), its run again is not.
	now := time.Now()
	queued := submit(t, a.base, map[string]any{"code": waitUntil(now.Add(12*time.Second), `console.log("waiting");`), "timeoutMs": 30000})
	called := submit(t, a.base, map[string]any{"timeoutMs": 30000, "capabilities": []string{"orders"},
		"code": waitUntil(now.Add(7*time.Second), `await env.orders.fetch("/api/orders", { method: "POST", body: "{}" });`)})
	syncResult := make(chan *execution.Result, 1)
	go runSync(t, a.base, waitUntil(now.Add(60*time.Second), ""), syncResult)
	for _, id := range []string{queued, called} {
		awaitStatus(t, a, id, execution.StatusRunning)
	}
	if !testwait.Until(30*time.Second, func() bool { return orders.Load() == 1 }) {
		t.Fatalf("the guest's call never reached the service:\n%s", a.stdout.String())
	}
	stream := make(chan streamed, 1)
	go func() { stream <- follow(a.base, queued, 0) }()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	checkRefusing(t, a, queued)
	var b *process
	if storage == "postgres" {
		b = startProcess(t, bin, env...) // takes over the queue
	}
	if err := <-a.done; err != nil {
		t.Errorf("gateway after SIGTERM: %v\n%s", err, a.stdout.String())
	}
	if res := <-syncResult; res == nil || res.Error == nil || res.Error.Code != execution.CodeRuntimeCrashed || len(res.Outbound) != 0 {
		t.Errorf("the synchronous execution running past the grace ended with %+v, want runtime_crashed with no call made", res)
	}
	if storage == "sqlite" {
		checkHandedBack(t, location, queued)
		b = startProcess(t, bin, env...)
	}
	// The event stream open on the stopped gateway ended cleanly once it
	// had handed over (not cut by its exit); resumed on the next gateway
	// after the last event seen, it goes on with none lost or repeated.
	first := <-stream
	if first.err != io.EOF || len(first.ids) == 0 {
		t.Errorf("the stream on the stopping gateway ended with %v after events %v; want a clean end (EOF) after its first events", first.err, first.ids)
	}
	rest := follow(b.base, queued, first.ids[len(first.ids)-1])
	if ids := append(first.ids, rest.ids...); len(ids) == 0 || ids[0] != 1 || ids[len(ids)-1] != int64(len(ids)) || rest.types[len(rest.types)-1] != execution.EventResult {
		t.Errorf("events %v (%v resumed), want 1 to N in order, ending with the result", ids, rest.types)
	}
	rec := awaitStatus(t, b, queued, execution.StatusFinished)
	if rec.Result == nil || !rec.Result.Success || rec.Result.Stdout != "waiting" {
		t.Errorf("%s (handed back) ended %+v, want success, printing its run again's line only", queued, rec.Result)
	}
	if counts := eventCounts(t, b.base, queued); counts["restart"] != 1 || counts["start"] != 1 || counts["result"] != 1 {
		t.Errorf("%s events %v, want one start, one restart, one result", queued, counts)
	}
	rec = awaitStatus(t, b, called, execution.StatusFinished)
	if rec.Result == nil || !rec.Result.Success || len(rec.Result.Outbound) != 1 || orders.Load() != 1 {
		t.Errorf("%s (it made a call) ended %+v with %d calls made; want success, its one call listed and made once", called, rec.Result, orders.Load())
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-b.done
	checkAttempt(t, location, queued, 1)
}

// built is the gateway binary the handoff tests share: building it takes
// seconds. TestMain removes its directory.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// sharedGateway builds cmd/gateway once for the tests that share it.
func sharedGateway(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "gateway-bin-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "gateway")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// waitUntil is a guest that runs first, then waits until at.
func waitUntil(at time.Time, first string) string {
	return fmt.Sprintf(`export default { async fetch(request, env) {
  %s
  await new Promise((r) => setTimeout(r, Math.max(0, %d - Date.now())));
  return new Response("done");
} }`, first, at.UnixMilli())
}

// runSync runs code synchronously on the gateway at base, as a stream, and
// sends its result (nil if it had none) once it has started.
func runSync(t *testing.T, base, code string, result chan<- *execution.Result) {
	body, _ := json.Marshal(map[string]any{"code": code, "timeoutMs": 59000})
	req, _ := http.NewRequest(http.MethodPost, base+"/execute", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST /execute: %v", err)
		result <- nil
		return
	}
	defer resp.Body.Close()
	var last *execution.Result
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev execution.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == execution.EventResult {
			last = ev.Result
		}
	}
	result <- last
}

// awaitStatus polls execution id's record on g until it is in status.
func awaitStatus(t *testing.T, g *process, id, status string) execution.Record {
	t.Helper()
	var rec execution.Record
	if !testwait.Until(60*time.Second, func() bool {
		getJSON(t, g.base+"/executions/"+id, &rec)
		return rec.Status == status
	}) {
		t.Fatalf("%s is %s, not %s, after 60s:\n%s", id, rec.Status, status, g.stdout.String())
	}
	return rec
}

// checkRefusing checks a gateway that got SIGTERM: not ready, refusing new
// executions with 503 and Retry-After, still answering reads.
func checkRefusing(t *testing.T, g *process, id string) {
	t.Helper()
	if !testwait.Until(10*time.Second, func() bool {
		resp, err := http.Get(g.base + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz after SIGTERM: %v (the listener must stay open)", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}) {
		t.Fatal("/readyz did not answer 503 after SIGTERM")
	}
	for _, path := range []string{"/execute", "/executions"} {
		resp, err := http.Post(g.base+path, "application/json", strings.NewReader(`{"code": "export default { fetch() { return new Response(\"x\"); } }"}`))
		if err != nil {
			t.Fatalf("POST %s after SIGTERM: %v", path, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(data), execution.ProblemRuntimeUnavailable) {
			t.Errorf("POST %s after SIGTERM = %d %s (Retry-After %q), want 503 runtime_unavailable with Retry-After", path, resp.StatusCode, data, resp.Header.Get("Retry-After"))
		}
	}
	var rec execution.Record
	getJSON(t, g.base+"/executions/"+id, &rec) // reads go on
}

// eventCounts counts execution id's events by type.
func eventCounts(t *testing.T, base, id string) map[string]int {
	t.Helper()
	resp, err := http.Get(base + "/executions/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var ev struct{ Type string }
		_ = json.Unmarshal([]byte(line), &ev)
		counts[ev.Type]++
	}
	return counts
}

// checkHandedBack checks, in the SQLite file a stopped gateway left, that
// execution id is queued again, not left running for a crash's recovery.
func checkHandedBack(t *testing.T, path, id string) {
	t.Helper()
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := st.Get(t.Context(), "anonymous", id)
	if err != nil || e.Status != store.Queued || e.Attempts != 0 {
		t.Errorf("%s after the gateway stopped: %+v, %v; want queued, its run not counted", id, e, err)
	}
}

// checkAttempt checks how many runs of execution id the store at location
// counts.
func checkAttempt(t *testing.T, location, id string, want int) {
	t.Helper()
	st, err := store.Open(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if e, err := st.Get(t.Context(), "anonymous", id); err != nil || e.Attempts != want {
		t.Errorf("%s: %+v, %v; want %d attempts", id, e, err, want)
	}
}

// streamed is what follow read of an event stream: the events' ids and
// types, and how it ended.
type streamed struct {
	ids   []int64
	types []string
	err   error
}

// follow reads execution id's NDJSON event stream on base after event
// after, until it ends: io.EOF for an end the server chose (the response
// complete), another error if the connection was cut.
func follow(base, id string, after int64) streamed {
	var out streamed
	resp, err := http.Get(fmt.Sprintf("%s/executions/%s/events?after=%d", base, id, after))
	if err != nil {
		out.err = err
		return out
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		var ev struct {
			EventID int64 `json:"eventId"`
			Type    string
		}
		if len(line) > 0 && json.Unmarshal(line, &ev) == nil {
			out.ids, out.types = append(out.ids, ev.EventID), append(out.types, ev.Type)
		}
		if err != nil {
			out.err = err
			return out
		}
	}
}
