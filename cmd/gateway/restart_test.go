package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// process is a gateway binary running as its own process.
type process struct {
	cmd    *exec.Cmd
	base   string
	stdout *loadertest.Buffer
	done   chan error
}

// buildGateway builds cmd/gateway into a temporary directory.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs `bin serve` with env on a free loopback port and waits
// until it is ready.
func startProcess(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	p := &process{stdout: &loadertest.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	go func() { p.done <- p.cmd.Wait() }()
	p.base = "http://" + waitListening(t, p.stdout, p.done)
	waitReady(t, p.base, p.stdout)
	return p
}

// getJSON gets path and decodes its 200 answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// submit queues req on the gateway at base and returns the execution's id.
func submit(t *testing.T, base string, req map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(req)
	resp, err := http.Post(base+"/executions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc execution.Accepted
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /executions = %d", resp.StatusCode)
	}
	return acc.ID
}

// finishedRecords lists the finished records by id.
func finishedRecords(t *testing.T, base string) map[string]execution.Record {
	t.Helper()
	var page execution.RecordList
	getJSON(t, base+"/executions?status=finished&limit=100", &page)
	out := map[string]execution.Record{}
	for _, r := range page.Executions {
		out[r.ID] = r
	}
	return out
}

// TestKillRestart stops a gateway (the real binary) with 50 executions
// queued, by SIGKILL and by SIGTERM, and restarts it on the same SQLite
// file: all 50 finish, none twice. The ones that had finished keep their
// record as it was; the ones running at a SIGKILL (no network allowed) run
// again; every record has exactly one start and one result event.
func TestKillRestart(t *testing.T) {
	bin := buildGateway(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { killRestart(t, bin, sig) })
	}
}

func killRestart(t *testing.T, bin string, sig syscall.Signal) {
	env := []string{
		"GATEWAY_STORAGE_PATH=" + filepath.Join(t.TempDir(), "executions.db"),
		"GATEWAY_RUNTIME_WORKERD=" + loadertest.Workerd(t),
		"GATEWAY_RUNTIME_PROCESSES=1",
		"GATEWAY_STORAGE_WORKERS=2",
	}
	g := startProcess(t, bin, env...)
	const n = 50
	var ids []string
	for i := range n {
		code := fmt.Sprintf(`export default { async fetch() {
  console.log("run %d");
  await new Promise((r) => setTimeout(r, 150));
  return new Response("done %d");
} }`, i, i)
		ids = append(ids, submit(t, g.base, map[string]any{"code": code}))
	}
	// Kill it once a few have finished, with most still queued.
	if !testwait.Until(60*time.Second, func() bool { return len(finishedRecords(t, g.base)) >= 4 }) {
		t.Fatalf("no executions finished within 60s:\n%s", g.stdout.String())
	}
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-g.done
	dbPath := strings.TrimPrefix(env[0], "GATEWAY_STORAGE_PATH=")
	before := finishedInStore(t, dbPath)
	g = startProcess(t, bin, env...)
	var after map[string]execution.Record
	if !testwait.Until(120*time.Second, func() bool { after = finishedRecords(t, g.base); return len(after) == n }) {
		t.Fatalf("%d of %d finished within 120s of the restart:\n%s", len(after), n, g.stdout.String())
	}
	for id, r := range before {
		if a := after[id]; !a.FinishedAt.Equal(r) {
			t.Errorf("%s finished before the kill at %v and again at %v", id, r, a.FinishedAt)
		}
	}
	restarted := checkRunOnce(t, g.base, ids)
	if len(before) == n {
		t.Fatal("every execution had finished before the kill; the test proves nothing")
	}
	metrics := scrape(t, g.base)
	g.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-g.done; err != nil {
		t.Errorf("gateway after SIGTERM: %v", err)
	}
	again := checkAttempts(t, dbPath, ids, restarted, 2)
	// The restarted gateway's metrics count what it did: it took over
	// the ones running at the stop, claimed the rest of the queue for the
	// first time (their wait observed), and ran all that were left.
	for name, want := range map[string]int{
		`gateway_recovered_executions_total{action="requeued"}`: again,
		`gateway_queue_wait_seconds_count`:                      n - len(before) - again,
		`gateway_executions_total{outcome="success"}`:           n - len(before),
	} {
		if got := metrics[name]; got != float64(want) {
			t.Errorf("after the restart %s = %v, want %d", name, got, want)
		}
	}
}

// scrape reads a gateway's metrics: each sample's value by its name and
// labels as the text format writes them.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

// finishedInStore reads, from the store a killed gateway left, when each
// finished execution finished.
func finishedInStore(t *testing.T, path string) map[string]time.Time {
	t.Helper()
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, err := st.List(t.Context(), "anonymous", store.Query{Status: store.Finished, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, e := range page.Executions {
		out[e.ID] = e.FinishedAt
	}
	t.Logf("%d executions had finished at the kill", len(out))
	return out
}

// checkRunOnce checks each record's result and events: one start, one
// result, its own output; it returns the ids that were run again.
func checkRunOnce(t *testing.T, base string, ids []string) map[string]bool {
	t.Helper()
	restarted := map[string]bool{}
	for i, id := range ids {
		var rec execution.Record
		getJSON(t, base+"/executions/"+id, &rec)
		if rec.Result == nil || !rec.Result.Success || rec.Result.Response == nil || rec.Result.Response.Body != fmt.Sprintf("done %d", i) {
			t.Errorf("%s: result %+v, want its own success", id, rec.Result)
			continue
		}
		resp, err := http.Get(base + "/executions/" + id + "/events")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		counts := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			var ev struct{ Type string }
			_ = json.Unmarshal([]byte(line), &ev)
			counts[ev.Type]++
		}
		if counts["start"] != 1 || counts["result"] != 1 || counts["restart"] > 1 {
			t.Errorf("%s events: %v, want one start, one result, at most one restart\n%s", id, counts, body)
		}
		restarted[id] = counts["restart"] == 1
	}
	return restarted
}

// checkAttempts reads the store the gateway left: each execution was
// claimed once, except those running when the gateway was killed (at most
// one per worker), claimed twice; one whose events show a restart is one
// of those. It returns how many were claimed twice.
func checkAttempts(t *testing.T, path string, ids []string, restarted map[string]bool, workers int) int {
	t.Helper()
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	again := 0
	for _, id := range ids {
		e, err := st.Get(t.Context(), "anonymous", id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Attempts == 2 {
			again++
		}
		if e.Attempts < 1 || e.Attempts > 2 || (restarted[id] && e.Attempts != 2) {
			t.Errorf("%s claimed %d times (restart event: %v), want once, or twice if it ran at the kill", id, e.Attempts, restarted[id])
		}
	}
	if again > workers {
		t.Errorf("%d executions claimed twice, but only %d can have been running at the kill", again, workers)
	}
	t.Logf("%d executions were running at the kill and ran again", again)
	return again
}
