package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
)

// benchHistory serves with execution records on a fresh SQLite file and no
// API keys; finished receives every execution that ends.
func benchHistory(b *testing.B, opts executions.RecordOptions) (string, chan *store.Execution) {
	b.Helper()
	gatewayURL(b)
	st, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "executions.db"))
	if err != nil {
		b.Fatal(err)
	}
	finished := make(chan *store.Execution, 1<<16)
	opts.Finished = func(_ context.Context, e *store.Execution) { finished <- e }
	b.Cleanup(func() { st.Close() })
	o := apitest.Options()
	o.Store, o.Records = st, opts
	srv := httptest.NewServer(apitest.Serve(b, zerolog.Nop(), shared.backend, o))
	b.Cleanup(srv.Close)
	return srv.URL, finished
}

const benchBody = `{"code": "export default { fetch() { console.log('hi'); return new Response('ok'); } }", "isolate": "reuse"}`

// BenchmarkHistoryCost measures what recording costs a synchronous
// POST /execute: the same warm execution, one at a time, on a gateway
// without records and on one with them (SQLite), in alternating blocks of
// 50 (so that the writer's work after a recorded execution lands in its own
// block); it reports both p50s. Run:
// go test -run '^$' -bench HistoryCost -benchtime 2000x ./internal/api
func BenchmarkHistoryCost(b *testing.B) {
	on, _ := benchHistory(b, executions.RecordOptions{})
	off := gatewayURL(b)
	alternate(b, off, on, "off", "on")
}

// alternate posts to a and to b in turn, 50 at a time (so that what one
// leaves to do in the background lands in its own block), and reports each
// one's p50 as p50-<nameA>-ms and p50-<nameB>-ms.
func alternate(b *testing.B, a, c, nameA, nameC string) {
	var aD, cD []time.Duration
	i := 0
	for b.Loop() {
		if (i/50)%2 == 0 {
			aD = append(aD, postOnce(b, a))
		} else {
			cD = append(cD, postOnce(b, c))
		}
		i++
	}
	if len(cD) == 0 {
		b.Fatal("too few iterations: run with -benchtime 2000x")
	}
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	b.ReportMetric(p50(aD), "p50-"+nameA+"-ms")
	b.ReportMetric(p50(cD), "p50-"+nameC+"-ms")
}

func postOnce(b *testing.B, base string) time.Duration {
	start := time.Now()
	resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(benchBody))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return time.Since(start)
}

// BenchmarkAsyncThroughput submits 200 executions to POST /executions and
// measures how many finish per second with 8 workers (concurrency 8),
// from the first submission to the last end. Run:
// go test -run '^$' -bench AsyncThroughput -benchtime 3x ./internal/api
func BenchmarkAsyncThroughput(b *testing.B) {
	const n = 200
	base, finished := benchHistory(b, executions.RecordOptions{Workers: 8, MaxQueued: 10 * n})
	var rates []float64
	for b.Loop() {
		start := time.Now()
		for range n {
			resp, err := http.Post(base+"/executions", "application/json", strings.NewReader(benchBody))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		for range n {
			if e := <-finished; e.Result == nil || !e.Result.Success {
				b.Fatalf("execution %s did not succeed", e.ID)
			}
		}
		rates = append(rates, n/time.Since(start).Seconds())
	}
	slices.Sort(rates)
	b.ReportMetric(rates[len(rates)/2], "exec/s")
	b.ReportMetric(0, "ns/op")
}
