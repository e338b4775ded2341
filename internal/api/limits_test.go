package api_test

import (
	"encoding/json"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// rss returns this process's resident memory in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	n := local.ResidentBytes(os.Getpid())
	if n == 0 {
		t.Skip("no /proc to read memory from")
	}
	return n
}

// TestLogFloodIsCapped sends 200 MB of console output through the gateway in
// both renderings. It is not parallel, so the gateway's memory is measured
// with nothing else running.
func TestLogFloodIsCapped(t *testing.T) {
	gatewayURL(t) // start the shared gateway before measuring
	runtime.GC()
	before := rss(t)
	flood := `export default { fetch() {
		const line = "x".repeat(1000);
		for (let i = 0; i < 200000; i++) console.log(line);
		console.error("the end");
		return new Response("survived");
	} }`
	res := execute(t, map[string]any{"code": flood})
	wantSuccess(t, res)
	total := 0
	for _, l := range res.Logs {
		total += len(l.Message)
	}
	if !res.Truncated || total > testLimits.MaxLogBytes || total < testLimits.MaxLogBytes/2 || res.Response.Body != "survived" {
		t.Errorf("truncated = %v, %d log bytes kept, body %q; want truncated near %d bytes and the response", res.Truncated, total, res.Response.Body, testLimits.MaxLogBytes)
	}
	if len(res.Stdout) > testLimits.MaxLogBytes+len(res.Logs) {
		t.Errorf("stdout holds %d bytes, more than the cap", len(res.Stdout))
	}

	got := openStream(t, gatewayURL(t), "application/x-ndjson", map[string]any{"code": flood}).all(true)
	if r := resultOf(got); !r.Truncated || !r.Success || len(got) > testLimits.MaxLogBytes/1000+3 {
		t.Errorf("stream: %d events, result %+v; want at most the cap's worth of logs and truncated", len(got), r)
	}

	runtime.GC()
	grown := rss(t) - before
	t.Logf("gateway RSS grew %d MiB over two 200 MB floods", grown>>20)
	// The process's resident memory, shared with the tests running beside
	// this one (and grown by the race detector's shadow memory under
	// -race): a wide bound, still far below the 400 MB the floods printed.
	if grown > 128<<20 {
		t.Errorf("gateway RSS grew %d MiB, want under 128 MiB (log cap %d bytes)", grown>>20, testLimits.MaxLogBytes)
	}
}

// TestHugeResponseBodyIsCapped: a guest streaming a body without end gets
// success with the body cut at the cap: the gateway stops reading there (a
// reader that did not would wait for the end until the timeout).
func TestHugeResponseBodyIsCapped(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `export default { fetch() {
		const chunk = new Uint8Array(64 * 1024).fill(65);
		return new Response(new ReadableStream({ pull(c) { c.enqueue(chunk); } }));
	} }`, "timeoutMs": 20000})
	wantSuccess(t, res)
	if !res.Truncated || int64(len(res.Response.Body)) != testLimits.MaxResponseBytes {
		t.Errorf("truncated = %v, body %d bytes; want truncated at %d", res.Truncated, len(res.Response.Body), testLimits.MaxResponseBytes)
	}
}

func TestRequestCaps(t *testing.T) {
	t.Parallel()
	modules := map[string]string{}
	for i := range testLimits.MaxModules + 1 {
		modules["m"+strconv.Itoa(i)+".js"] = "export default { fetch() { return new Response('x'); } }"
	}
	tests := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"code too large", map[string]any{"code": "//" + strings.Repeat("x", testLimits.MaxCodeBytes)}, "code"},
		{"too many modules", map[string]any{"modules": modules}, "modules"},
		{"env too large", map[string]any{"code": okJS, "env": map[string]any{"BIG": strings.Repeat("e", testLimits.MaxEnvBytes)}}, "env"},
		{"secrets too large", map[string]any{"code": okJS, "secrets": map[string]any{"BIG": strings.Repeat("s", testLimits.MaxEnvBytes)}}, "env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := post(t, "/execute", "application/json", tt.body)
			var p api.Problem
			_ = json.Unmarshal(data, &p)
			if resp.StatusCode != 422 || len(p.Errors) == 0 || p.Errors[0].Field != tt.field || p.Errors[0].Code != "too_large" {
				t.Errorf("status %d, problem %s; want 422 with %s:too_large", resp.StatusCode, data, tt.field)
			}
		})
	}
}

const okJS = "export default { fetch() { return new Response('ok'); } }"

// TestQueueFullIs503: with the runtime's one place taken and no queue, an
// execution is answered 503 runtime_unavailable with Retry-After; the one
// holding the place still succeeds.
func TestQueueFullIs503(t *testing.T) {
	t.Parallel()
	log := zerolog.Nop()
	pool := loadertest.StartLocal(t, log, loadertest.Processes(1), func(c *local.Config) {
		c.MaxConcurrency = 1
		c.QueueSize = -1 // no queue
	})
	backend := &holdingBackend{Backend: pool}
	srv := httptest.NewServer(apitest.Serve(t, log, backend, apitest.Gateway{Options: api.Options{MaxRequestBytes: testMaxBody}, Limits: testLimits, Now: func() time.Time { return testNow }}))
	t.Cleanup(func() {
		srv.Close()
		pool.Close()
	})
	// The first keeps the one place while the backend holds its first event.
	reached, release := backend.holdNext(t)
	busy := make(chan *execution.Result, 1)
	go func() { busy <- executeAt(t, srv.URL, map[string]any{"code": okJS}) }()
	<-reached
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/execute", strings.NewReader(`{"code": "`+okJS+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, data := do(t, req)
	wantUnavailable(t, "over capacity", resp, data)
	release()
	if res := <-busy; !res.Success {
		t.Errorf("busy execution = %+v, want success", res)
	}
}
