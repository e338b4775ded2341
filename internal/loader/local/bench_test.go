package local_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
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

// BenchmarkWarmCPU runs a hello world in a warm isolate through the pool
// alone, four at a time, buffered, and reports the CPU time workerd spends
// per execution (the shim, the wrapper and the runtime's HTTP, from
// /proc/PID/stat of the workerd processes this test started) and the
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
	cpu0 := workerdCPU(b)
	start := time.Now()
	b.SetParallelism(2) // 4 at a time on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			run()
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exec/s")
	b.ReportMetric(float64((workerdCPU(b)-cpu0).Microseconds())/float64(b.N), "workerd-cpu-µs/op")
}

// workerdCPU is the CPU time (user and system) of the workerd processes
// this process started, children or grandchildren.
func workerdCPU(tb testing.TB) time.Duration {
	tb.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		tb.Skip("no /proc")
	}
	me := os.Getpid()
	var ticks int64
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		if end < 0 || !strings.Contains(s[:end], "workerd") {
			continue
		}
		f := strings.Fields(s[end+2:]) // from field 3, state
		ppid, _ := strconv.Atoi(f[1])
		if ppid != me && parentOf(ppid) != me {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(stat)
	end := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[end+2:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
