package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// guestFlags are the compatibility flags every side's guest is given: none,
// so the guest compatibility date's defaults. The gateway's requests carry
// none either.
var guestFlags []string

const helloCode = `export default { fetch() { console.log("hi"); return new Response("ok"); } }`

func gatewayBody(date, isolate string) []byte {
	b, _ := json.Marshal(map[string]any{"code": helloCode, "compatibilityDate": date, "isolate": isolate})
	return b
}

func bareBody(date string, flags []string) []byte {
	b, _ := json.Marshal(map[string]any{"code": helloCode, "compatibilityDate": date, "compatibilityFlags": flags})
	return b
}

// measureFloor creates isolates in a loop inside one workerd request, with
// the guest's flags (guestFlags: the date's defaults, nodejs_compat on from
// 2026-08-04) and without Node compatibility (noNodeFlags).
func measureFloor(ctx context.Context, e *benchEnv, o options, r *Report) error {
	for _, side := range []struct {
		name  string
		flags []string
	}{{"default flags", guestFlags}, {"no_nodejs_compat,no_nodejs_compat_v2", noNodeFlags}} {
		var samples []float64
		for range o.repeats {
			body, _ := json.Marshal(map[string]any{"code": helloCode, "compatibilityDate": o.date, "compatibilityFlags": side.flags, "loops": 100})
			resp, err := e.client.Post(e.bare[0].url+"/floor", "application/json", strings.NewReader(string(body)))
			if err != nil {
				return err
			}
			var out struct {
				MsPerIsolate float64 `json:"msPerIsolate"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil {
				return err
			}
			samples = append(samples, out.MsPerIsolate)
		}
		r.Floor = append(r.Floor, Figure{Name: "isolate in a loop, " + side.name, Unit: "ms", Stat: stat(samples), Flags: side.flags})
	}
	return nil
}

// measurePool compares throughput with one runtime process and with one per CPU.
func measurePool(ctx context.Context, e *benchEnv, o options, r *Report) error {
	n := runtime.NumCPU()
	one, many := []float64{}, []float64{}
	for i := range o.repeats {
		for j, procs := range []int{1, n} {
			if i%2 == 1 {
				procs = []int{n, 1}[j]
			}
			res := e.load(ctx, []string{e.gateways[procs].srv.URL + "/execute"}, gatewayBody(o.date, "fresh"), o.n, 8, `"success":true`)
			r.Failures += res.failures
			if procs == 1 {
				one = append(one, res.throughput())
			} else {
				many = append(many, res.throughput())
			}
		}
	}
	r.Pool = []Figure{
		{Name: "1 runtime process", Unit: "exec/s", Stat: stat(one)},
		{Name: fmt.Sprintf("%d runtime processes", n), Unit: "exec/s", Stat: stat(many)},
	}
	return nil
}

// measureReuse compares fresh and warm isolates at concurrency 8.
func measureReuse(ctx context.Context, e *benchEnv, o options, r *Report) error {
	url := []string{e.gateways[runtime.NumCPU()].srv.URL + "/execute"}
	var fresh, reuse, freshP50, reuseP50 []float64
	for i := range o.repeats {
		order := []string{"fresh", "reuse"}
		if i%2 == 1 {
			order = []string{"reuse", "fresh"}
		}
		for _, isolate := range order {
			res := e.load(ctx, url, gatewayBody(o.date, isolate), o.n, 8, `"success":true`)
			r.Failures += res.failures
			if isolate == "fresh" {
				fresh, freshP50 = append(fresh, res.throughput()), append(freshP50, ms(res.p(.5)))
			} else {
				reuse, reuseP50 = append(reuse, res.throughput()), append(reuseP50, ms(res.p(.5)))
			}
		}
	}
	r.Reuse = []Figure{
		{Name: "fresh isolate, throughput at concurrency 8", Unit: "exec/s", Stat: stat(fresh)},
		{Name: "reused isolate, throughput at concurrency 8", Unit: "exec/s", Stat: stat(reuse)},
		{Name: "fresh isolate, p50 at concurrency 8", Unit: "ms", Stat: stat(freshP50)},
		{Name: "reused isolate, p50 at concurrency 8", Unit: "ms", Stat: stat(reuseP50)},
	}
	return nil
}

// measureNode spawns node per execution with the same code, at concurrency
// equal to the CPUs.
func measureNode(ctx context.Context, e *benchEnv, o options, r *Report) error {
	dir := filepath.Join(e.dir, "node")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	runner := filepath.Join(dir, "runner.mjs")
	main := filepath.Join(dir, "main.mjs")
	if err := os.WriteFile(runner, nodeRunner, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(main, []byte(helloCode), 0o644); err != nil {
		return err
	}
	var tps, p50s []float64
	for range o.repeats {
		n, conc := 40, runtime.NumCPU()
		lat := make([]time.Duration, n)
		var mu sync.Mutex
		next := 0
		start := time.Now()
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					if i >= n {
						return
					}
					t := time.Now()
					out, err := exec.CommandContext(ctx, "node", runner, main).Output()
					lat[i] = time.Since(t)
					if err != nil || !strings.Contains(string(out), "ok") {
						mu.Lock()
						r.Failures++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		res := loadRun{latencies: lat, elapsed: time.Since(start)}
		tps, p50s = append(tps, res.throughput()), append(p50s, ms(res.p(.5)))
	}
	r.Node = []Figure{
		{Name: "node per execution, throughput", Unit: "exec/s", Stat: stat(tps)},
		{Name: "node per execution, p50", Unit: "ms", Stat: stat(p50s)},
	}
	return nil
}

// measureStreaming reads NDJSON events of a guest that logs Date.now()
// every 10 ms and subtracts it from the arrival time.
func measureStreaming(ctx context.Context, e *benchEnv, o options, r *Report) error {
	body, _ := json.Marshal(map[string]any{"compatibilityDate": o.date, "code": `export default { async fetch() {
  for (let i = 0; i < 50; i++) { await new Promise((r) => setTimeout(r, 10)); console.log(String(Date.now())); }
  return new Response("ok");
} }`})
	var p50s, p99s []float64
	for range o.repeats {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.gateways[runtime.NumCPU()].srv.URL+"/execute", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/x-ndjson")
		resp, err := e.client.Do(req)
		if err != nil {
			return err
		}
		var delays []time.Duration
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Type != "log" {
				continue
			}
			if msec, err := strconv.ParseInt(ev.Message, 10, 64); err == nil {
				delays = append(delays, time.Since(time.UnixMilli(msec)))
			}
		}
		resp.Body.Close()
		res := loadRun{latencies: delays}
		p50s, p99s = append(p50s, ms(res.p(.5))), append(p99s, ms(res.p(.99)))
	}
	r.Streaming = []Figure{
		{Name: "console.log to client, p50", Unit: "ms", Stat: stat(p50s)},
		{Name: "console.log to client, p99", Unit: "ms", Stat: stat(p99s)},
	}
	return nil
}

// measureSoak runs o.soak executions at concurrency 8 and samples the
// resident memory of the gateway (this process) and its workerd processes.
func measureSoak(ctx context.Context, e *benchEnv, o options, r *Report) error {
	if o.soak <= 0 {
		return nil
	}
	g := e.gateways[runtime.NumCPU()]
	url := []string{g.srv.URL + "/execute"}
	body := gatewayBody(o.date, "fresh")
	e.load(ctx, url, body, 2000, 8, `"success":true`) // to the runtimes' plateau
	runtime.GC()
	sample := func(done int) MemorySample {
		var workerd int64
		for _, pid := range g.backend.PIDs() {
			workerd += local.ResidentBytes(pid)
		}
		return MemorySample{Executions: done, GatewayMiB: float64(local.ResidentBytes(os.Getpid())) / (1 << 20), WorkerdMiB: float64(workerd) / (1 << 20)}
	}
	r.Soak = append(r.Soak, sample(0))
	step := o.soak / 10
	start := time.Now()
	for done := 0; done < o.soak && ctx.Err() == nil; done += step {
		res := e.load(ctx, url, body, step, 8, `"success":true`)
		r.Failures += res.failures
		r.SoakFailures += res.failures
		runtime.GC()
		r.Soak = append(r.Soak, sample(done+step))
	}
	r.SoakThroughput = float64(o.soak) / time.Since(start).Seconds()
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
