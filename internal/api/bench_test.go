package api_test

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkExecuteHello measures a hello-world execution in a fresh isolate
// through the whole gateway (HTTP in, validation, workerd, capture, JSON out),
// one at a time. Run: go test -run '^$' -bench ExecuteHello ./internal/api
func BenchmarkExecuteHello(b *testing.B) {
	for _, date := range []string{"2026-11-16", "2026-11-17"} {
		b.Run(date, func(b *testing.B) {
			benchExecute(b, `{"code": "export default { fetch() { console.log('hi'); return new Response('ok'); } }", "compatibilityDate": "`+date+`"}`)
		})
	}
}

// BenchmarkExecuteWarm is BenchmarkExecuteHello with isolate "reuse": the
// isolate is warm, so what is left is the gateway's fixed cost per
// execution. Run: go test -run '^$' -bench ExecuteWarm -cpuprofile cpu.out ./internal/api
func BenchmarkExecuteWarm(b *testing.B) {
	benchExecute(b, `{"code": "export default { fetch() { console.log('hi'); return new Response('ok'); } }", "isolate": "reuse"}`)
}

// benchExecute posts body to /execute, one at a time, and reports the p50
// and p99 of the whole round trip.
func benchExecute(b *testing.B, body string) {
	base := gatewayURL(b)
	var durations []time.Duration
	for b.Loop() {
		start := time.Now()
		resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkStreamLogLatency measures the delay from a guest's console.log to
// the client reading the NDJSON event: the guest logs Date.now() every 10 ms,
// the client subtracts it from its own clock on arrival (same machine; the
// guest's clock has millisecond resolution).
// Run: go test -run '^$' -bench StreamLogLatency ./internal/api
func BenchmarkStreamLogLatency(b *testing.B) {
	base := gatewayURL(b)
	code := `export default { async fetch() {
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 10));
    console.log(String(Date.now()));
  }
  return new Response("ok");
} }`
	var delays []time.Duration
	for b.Loop() {
		s := openStream(b, base, "application/x-ndjson", map[string]any{"code": code})
		for _, a := range s.all(true) {
			if a.ev.Type != "log" {
				continue
			}
			ms, err := strconv.ParseInt(a.ev.Log.Message, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			delays = append(delays, a.at.Sub(time.UnixMilli(ms)))
		}
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkIsolate compares fresh isolates with reused warm ones through the
// whole gateway: p50 latency one at a time, and throughput at concurrency 8.
// Run: go test -run '^$' -bench Isolate -benchtime 400x ./internal/api
func BenchmarkIsolate(b *testing.B) {
	base := gatewayURL(b)
	for _, isolate := range []string{"fresh", "reuse"} {
		body := `{"code": "export default { fetch() { console.log('hi'); return new Response('ok'); } }", "isolate": "` + isolate + `"}`
		post := func() {
			resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b.Run(isolate+"/latency", func(b *testing.B) {
			var durations []time.Duration
			for b.Loop() {
				start := time.Now()
				post()
				durations = append(durations, time.Since(start))
			}
			slices.Sort(durations)
			b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
		})
		b.Run(isolate+"/throughput", func(b *testing.B) {
			b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 at once
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					post()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exec/s")
		})
	}
}
