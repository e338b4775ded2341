package local_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// BenchmarkWarmExecute runs a hello world in a warm isolate through the pool
// alone (signing, the shim, the wrapper, the relay; no HTTP API), one at a
// time, buffered (one JSON result wanted) and streamed: the runtime side of
// the gateway's fixed cost per execution.
// Run: go test -run '^$' -bench WarmExecute -benchtime 2000x ./internal/loader/local
func BenchmarkWarmExecute(b *testing.B) {
	l := loadertest.StartLocal(b, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	for _, buffered := range []bool{true, false} {
		name := "streamed"
		if buffered {
			name = "buffered"
		}
		b.Run(name, func(b *testing.B) {
			var d []time.Duration
			for b.Loop() {
				j := loadertest.Job("w", `export default { fetch() { console.log("hi"); return new Response("ok"); } }`, 10*time.Second)
				j.ReuseKey, j.Buffered = "bench", buffered
				start := time.Now()
				if _, err := loadertest.Run(b, l, j); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
