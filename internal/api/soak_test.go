package api_test

import (
	"fmt"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// BenchmarkSoak runs 20,000 fresh-isolate executions (SOAK_EXECUTIONS to
// change) at concurrency 8 through a gateway with one runtime process, then
// with one per CPU, and reports throughput, failures, and the resident
// memory of the gateway (this process, load generator included) plus its
// workerd processes before and after.
//
//	go test -run '^$' -bench Soak -benchtime 1x -timeout 30m ./internal/api
func BenchmarkSoak(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("SOAK_EXECUTIONS")); err == nil && v > 0 {
		n = v
	}
	for _, procs := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("processes=%d", procs), func(b *testing.B) {
			backend := loadertest.StartLocal(b, zerolog.Nop(), loadertest.Processes(procs))
			defer backend.Close()
			srv := httptest.NewServer(apitest.Serve(b, zerolog.Nop(), backend, apitest.Gateway{
				Options: api.Options{MaxRequestBytes: testMaxBody}, Limits: testLimits, Now: time.Now,
			}))
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			body := `{"code": "export default { fetch(req, env) { console.log('hello', env.N); return new Response('ok'); } }", "env": {"N": 1}}`
			run := func(count int) (failures int64, took time.Duration) {
				var next, failed atomic.Int64
				start := time.Now()
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > int64(count) {
								return
							}
							if count >= 10000 && i%(int64(count)/10) == 0 {
								b.Logf("after %6d executions: gateway %4d MiB, workerd %4d MiB", i, procRSS(os.Getpid())>>20, runtimesRSS(backend)>>20)
							}
							resp, err := client.Post(srv.URL+"/execute", "application/json", strings.NewReader(body))
							if err != nil {
								failed.Add(1)
								continue
							}
							data, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 || !strings.Contains(string(data), `"success":true`) {
								failed.Add(1)
							}
						}
					})
				}
				wg.Wait()
				return failed.Load(), time.Since(start)
			}
			for b.Loop() {
				run(500) // warm up
				runtime.GC()
				gwBefore, rtBefore := procRSS(os.Getpid()), runtimesRSS(backend)
				failures, took := run(n)
				runtime.GC()
				gwAfter, rtAfter := procRSS(os.Getpid()), runtimesRSS(backend)
				b.ReportMetric(float64(n)/took.Seconds(), "exec/s")
				b.ReportMetric(float64(failures), "failures")
				b.ReportMetric(float64(gwBefore)/(1<<20), "gw-rss-before-MiB")
				b.ReportMetric(float64(gwAfter)/(1<<20), "gw-rss-after-MiB")
				b.ReportMetric(float64(rtBefore)/(1<<20), "workerd-rss-before-MiB")
				b.ReportMetric(float64(rtAfter)/(1<<20), "workerd-rss-after-MiB")
				if failures > 0 {
					b.Errorf("%d of %d executions failed", failures, n)
				}
			}
		})
	}
}

// runtimesRSS is the resident memory of the backend's runtime processes.
func runtimesRSS(backend *local.Pool) int64 {
	var total int64
	for _, pid := range backend.PIDs() {
		total += procRSS(pid)
	}
	return total
}

func procRSS(pid int) int64 { return local.ResidentBytes(pid) }
