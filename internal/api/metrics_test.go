package api_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// TestMetrics runs a mix of executions and refusals, then scrapes /metrics
// and checks that each counter moved as it should.
func TestMetrics(t *testing.T) {
	t.Parallel()
	key, ci := apitest.NewKey(t, "ci")
	tight, tightKey := apitest.NewKey(t, "tight")
	tightKey.Requests = 1
	m := metrics.New()
	backend := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	m.WatchRuntime(func() metrics.RuntimeStats {
		p, q := backend.Stats()
		return metrics.RuntimeStats{Processes: p, Queued: q}
	})
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, apitest.Gateway{
		Options: api.Options{MaxRequestBytes: testMaxBody, Keys: auth.NewKeyring([]auth.Key{ci, tightKey}), Metrics: m},
		Limits:  testLimits, Now: func() time.Time { return testNow },
	}))
	t.Cleanup(func() {
		srv.Close()
		backend.Close()
	})
	call := func(method, path, key, body string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	programs := []string{
		`{"code": "export default { fetch() { console.log('hello'); return new Response('ok'); } }"}`,
		`{"code": "export default { fetch() { console.log('x'.repeat(70000)); return new Response('ok'); } }"}`,
		`{"code": "export default { fetch() { throw new Error('no'); } }"}`,
		// A timeout long enough for the runtime to have started the
		// isolate (counted below) on a loaded machine.
		`{"code": "export default { async fetch() { await new Promise((r) => setTimeout(r, 60000)); } }", "timeoutMs": 2000}`,
		`{"code": "export default { async fetch() { try { await fetch('http://10.0.0.1/'); } catch {} return new Response('ok'); } }", "allowOutbound": true}`,
	}
	for _, body := range programs {
		if status := call("POST", "/execute", key, body); status != 200 {
			t.Fatalf("execute: %d", status)
		}
	}
	call("POST", "/execute", "", programs[0])    // 401
	call("POST", "/execute", tight, programs[0]) // 200
	call("POST", "/execute", tight, programs[0]) // 429
	call("GET", "/nope/12345", "", "")           // 404, by route pattern
	if status := call("GET", "/metrics", "", ""); status != 401 {
		t.Errorf("GET /metrics without a key = %d, want 401", status)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	var text strings.Builder
	for sc.Scan() {
		line := sc.Text()
		text.WriteString(line + "\n")
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, _ := strconv.ParseFloat(line[i+1:], 64)
		samples[line[:i]] = v
	}
	want := map[string]float64{
		`gateway_executions_total{outcome="success"}`:                              4,
		`gateway_executions_total{outcome="exception"}`:                            1,
		`gateway_executions_total{outcome="timeout"}`:                              1,
		`gateway_truncated_executions_total`:                                       1,
		`gateway_outbound_requests_total{result="denied"}`:                         1,
		`gateway_auth_failures_total{key="unknown"}`:                               2, // the execution and the /metrics call
		`gateway_quota_refusals_total{key="tight",kind="rate"}`:                    1,
		`gateway_executions_in_flight`:                                             0,
		`gateway_executions_queued`:                                                0,
		`gateway_runtime_processes{state="ready"}`:                                 1,
		`gateway_http_requests_total{method="POST",route="/execute",status="200"}`: 6,
		`gateway_http_requests_total{method="GET",route="unmatched",status="404"}`: 1,
		`gateway_execution_duration_seconds_count{outcome="success"}`:              4,
		`gateway_isolate_start_seconds_count`:                                      6,
	}
	for name, v := range want {
		if got, ok := samples[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if samples["gateway_log_bytes_total"] < 65536 {
		t.Errorf("gateway_log_bytes_total = %v, want the kept log bytes", samples["gateway_log_bytes_total"])
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := samples[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if strings.Contains(text.String(), "12345") {
		t.Error("a raw path reached a metric label")
	}
}
