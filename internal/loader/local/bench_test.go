package local_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
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

// BenchmarkWarmCPU runs a hello world in a warm isolate through the pool
// alone, four at a time, buffered, and reports the CPU time workerd spends
// per execution (the shim, the wrapper and the runtime's HTTP, from
// /proc/PID/stat of the pool's processes) and the
// executions per second.
// Run: go test -run '^$' -bench WarmCPU -benchtime 4000x ./internal/loader/local
func BenchmarkWarmCPU(b *testing.B) {
	l := loadertest.StartLocal(b, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	run := func() {
		j := loadertest.Job("w", `export default { fetch() { console.log("hi"); return new Response("ok"); } }`, 10*time.Second)
		j.ReuseKey, j.Buffered = "bench", true
		if _, err := loadertest.Run(b, l, j); err != nil {
			b.Error(err)
		}
	}
	run()
	cpu0 := workerdCPU(l)
	start := time.Now()
	b.SetParallelism(2) // 4 at a time on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			run()
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exec/s")
	b.ReportMetric(float64((workerdCPU(l)-cpu0).Microseconds())/float64(b.N), "workerd-cpu-µs/op")
}

// workerdCPU is the CPU time (user and system) the pool's processes have
// used, from field 14 and 15 of /proc/PID/stat (after the command's ")").
func workerdCPU(l *local.Pool) time.Duration {
	var ticks int64
	for _, pid := range l.PIDs() {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 12 {
			utime, _ := strconv.ParseInt(f[11], 10, 64)
			stime, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += utime + stime
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// BenchmarkTimeoutOverrun reports how long after its deadline an execution
// that never answers gets its timeout result (the tests check only that it
// does): a guest that spins (its process is killed and replaced) and one
// that waits on a timer past it.
// Run: go test -run '^$' -bench TimeoutOverrun -benchtime 5x ./internal/loader/local
func BenchmarkTimeoutOverrun(b *testing.B) {
	l := loadertest.StartLocal(b, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.QueueTimeout = 30 * time.Second })
	defer l.Close()
	const deadline = time.Second
	guests := []struct{ name, code string }{
		{"spin", spin},
		{"wait", `export default { async fetch() { await new Promise((r) => setTimeout(r, 60000)); } }`},
	}
	for _, g := range guests {
		b.Run(g.name, func(b *testing.B) {
			var over []time.Duration
			for b.Loop() {
				loadertest.WaitReady(b, l, 30*time.Second) // a spinner's process is being replaced
				start := time.Now()
				res := loadertest.Result(b, l, loadertest.Job(g.name, g.code, deadline))
				over = append(over, time.Since(start)-deadline)
				if res.Error == nil || res.Error.Code != execution.CodeTimeout {
					b.Fatalf("result = %+v, want timeout", res.Error)
				}
			}
			slices.Sort(over)
			b.ReportMetric(float64(over[len(over)/2].Microseconds())/1000, "p50-ms-late")
			b.ReportMetric(float64(over[len(over)-1].Microseconds())/1000, "max-ms-late")
		})
	}
}
