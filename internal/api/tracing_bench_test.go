package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/tracing"
)

// BenchmarkTracing measures what tracing costs an execution: the same
// synchronous execution (a warm isolate that makes one capability call,
// sent with a caller's traceparent) through a gateway with tracing off and
// one exporting over OTLP/HTTP to a receiver that decodes every export.
// Reported: the round trip's p50, and per execution the allocations and
// the CPU time of the Go process (client, gateway and the receiver's
// reading of the exports; not workerd, and not the decoding of the exports,
// done after); "on" also the spans the receiver got per execution. Both gateways share one runtime.
// Run: go test -run '^$' -bench Tracing -benchtime 400x -count 3 ./internal/api
func BenchmarkTracing(b *testing.B) {
	f := capabilityGateway(b)
	caps := executions.Capabilities{"bench": {URL: f.service.srv.URL + "/api/", Methods: []string{"GET"}, TimeoutMs: 60000, MaxCalls: 10}}
	// The receiver keeps each export as it came; they are decoded after
	// the timing, so that decoding them is not counted as the gateway's.
	var mu sync.Mutex
	var exports [][]byte
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		exports = append(exports, data)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	spans := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, data := range exports {
			if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				data, _ = io.ReadAll(zr)
			}
			var req collectortrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(data, &req); err != nil {
				b.Fatalf("an export is not OTLP protobuf: %v", err)
			}
			for _, rs := range req.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					n += len(ss.Spans)
				}
			}
		}
		return n
	}
	b.Cleanup(receiver.Close)
	const body = `{"code": "export default { async fetch(req, env) { const r = await env.bench.fetch('items/1'); return new Response(await r.text()); } }", "capabilities": ["bench"], "isolate": "reuse"}`
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			tr := tracing.Off()
			if mode == "on" {
				var err error
				tr, err = tracing.Setup(b.Context(), func(k string) string {
					return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.URL}[k]
				}, "bench")
				if err != nil {
					b.Fatal(err)
				}
			}
			g := apitest.Options()
			g.Capabilities = caps
			g.Tracing = tr
			srv := httptest.NewServer(apitest.Serve(b, zerolog.Nop(), f.pool, g))
			defer srv.Close()
			post := func(flags string) {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/execute", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+flags)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"success":true`) {
					b.Fatalf("status %d: %s", resp.StatusCode, data)
				}
			}
			post("00") // the warm isolate made; not sampled, so no spans
			before := spans()
			var durations []time.Duration
			cpu0 := processCPU(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				post("01")
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			cpu := processCPU(b) - cpu0
			if err := tr.Shutdown(b.Context()); err != nil { // the spans still buffered
				b.Fatal(err)
			}
			slices.Sort(durations)
			b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(spans()-before)/float64(len(durations)), "spans/op")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(durations)), "go-cpu-us/op")
		})
	}
}

// processCPU is the CPU time (user and system) this process has used: the
// client, the gateway and the receiver, not workerd (a child process).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
