package shim_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// BenchmarkWarmHop measures the hop from the gateway to a local workerd
// process for a warm silent guest (isolate "reuse"), one at a time: each
// execution as a signed POST of /run, or on the process's channel. Besides
// time per execution it reports the CPU per execution of this process (the
// gateway's side of the hop, with the benchmark's loop) and of workerd.
//
//	go test -run '^$' -bench WarmHop -benchtime 3000x -count 3 ./internal/loader/shim
func BenchmarkWarmHop(b *testing.B) {
	l := loadertest.StartLocal(b, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	base, secret := l.ShimURL()
	pid := l.PIDs()[0]
	job := loadertest.Job("hop", `export default { fetch() { return new Response("ok"); } }`, 30*time.Second)
	job.ReuseKey = "hop"
	job.Buffered = true
	for _, via := range []string{"http", "channel"} {
		b.Run(via, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			call := func() *shim.Call { return &shim.Call{Client: client, Base: base, Secret: secret, MaxEvent: 1 << 20} }
			var cs *shim.Channels
			if via == "channel" {
				cs = &shim.Channels{Client: client, Base: base, Secret: secret}
				defer cs.Close()
			}
			run := func() {
				c := call()
				c.Channels = cs
				ok := false
				if err := c.Run(context.Background(), job, func(ev execution.Event) error {
					ok = ok || ev.Type == execution.EventResult && ev.Result.Success
					return nil
				}); err != nil || !ok {
					b.Fatalf("run: %v (success %v)", err, ok)
				}
			}
			for range 50 {
				run()
			}
			self0, wd0 := selfCPU(), procCPU(b, pid)
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64((selfCPU()-self0).Microseconds())/n, "gateway-µs/op")
			b.ReportMetric(float64((procCPU(b, pid)-wd0).Microseconds())/n, "workerd-µs/op")
		})
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's CPU time from /proc/PID/stat (10 ms ticks).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
