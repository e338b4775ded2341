package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCapabilityCall measures one capability call: a guest calls
// env.bench.fetch in a loop and times the loop itself (workerd's clock
// advances across I/O), so the execution's own cost is left out; reported
// as guest-ns/call. A guest's direct fetch to the same service cannot be
// allowed (it listens on loopback, which the egress rules always refuse),
// so the baseline is the same GET sent straight from Go over a kept-alive
// connection (go-direct), the floor any path to the service pays. The
// difference is what the capability path adds: the guest's binding, the
// hop into the shim's Capability entrypoint (URL rules, ledger, headers),
// the capability network and the masking of the answer.
// Run: go test -run '^$' -bench CapabilityCall -benchtime 2000x ./internal/api
func BenchmarkCapabilityCall(b *testing.B) {
	f := capabilityGateway(b)
	b.Run("go-direct", func(b *testing.B) {
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, f.service.srv.URL+"/api/items/1", nil)
			req.Header.Set("Authorization", "Bearer "+capToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("guest-capability", func(b *testing.B) {
		const perExecution = 100
		calls, guestMs := 0, 0.0
		for calls < b.N {
			n := min(perExecution, b.N-calls)
			guestMs += benchCalls(b, f, n)
			calls += n
		}
		b.ReportMetric(guestMs*1e6/float64(calls), "guest-ns/call")
	})
}

// benchCalls runs one execution that makes n capability calls and returns
// how long the guest's loop took, in milliseconds.
func benchCalls(b *testing.B, f *capFixture, n int) float64 {
	code := fmt.Sprintf(`export default { async fetch(req, env) {
  const t0 = performance.now();
  for (let i = 0; i < %d; i++) { const r = await env.bench.fetch("items/" + i); await r.arrayBuffer(); }
  return new Response(String(performance.now() - t0));
} }`, n)
	body, _ := json.Marshal(map[string]any{"code": code, "capabilities": []string{"bench"}})
	req, _ := http.NewRequest(http.MethodPost, f.url+"/execute", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.ci)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Success  bool `json:"success"`
		Response struct {
			Body string `json:"body"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || !res.Success {
		b.Fatalf("execution failed: %v %+v", err, res)
	}
	ms, err := strconv.ParseFloat(res.Response.Body, 64)
	if err != nil {
		b.Fatal(err)
	}
	return ms
}

// maskBenchBytes is how long an answer BenchmarkCapabilityMask streams.
const maskBenchBytes = 32 << 20

// BenchmarkCapabilityMask measures a long capability answer streamed to
// the guest: the service writes maskBenchBytes (the Authorization header
// echoed once per 64 KiB block), the guest reads it to the end. "plain"
// calls a capability with no headers, whose answer is passed on unmasked;
// "masked" one whose three secret values are masked in it; the difference
// is the masking. Reported: MB/s through the gateway (wall clock of the
// execution) and workerd's CPU per MB (from /proc: the shim and the guest).
// Run: go test -run '^$' -bench CapabilityMask -benchtime 10x ./internal/api
func BenchmarkCapabilityMask(b *testing.B) {
	f := capabilityGateway(b)
	for _, tt := range []struct{ name, capability string }{{"plain", "open"}, {"masked", "bench"}} {
		b.Run(tt.name, func(b *testing.B) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  const r = await env[%q].fetch("stream?bytes=%d");
  const reader = r.body.getReader();
  let n = 0;
  for (;;) { const { done, value } = await reader.read(); if (done) break; n += value.length; }
  return new Response(String(n));
} }`, tt.capability, maskBenchBytes)
			body, _ := json.Marshal(map[string]any{"code": code, "capabilities": []string{tt.capability}, "timeoutMs": 30000})
			b.SetBytes(maskBenchBytes)
			cpu0 := poolCPU(f)
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, f.url+"/execute", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+f.ci)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var res struct {
					Success  bool `json:"success"`
					Response struct {
						Body string `json:"body"`
					} `json:"response"`
				}
				err = json.NewDecoder(resp.Body).Decode(&res)
				resp.Body.Close()
				if err != nil || !res.Success || res.Response.Body == "" {
					b.Fatalf("execution failed: %v %+v", err, res)
				}
			}
			mb := float64(b.N) * maskBenchBytes / (1 << 20)
			b.ReportMetric(float64((poolCPU(f)-cpu0).Milliseconds())/mb, "workerd-cpu-ms/MB")
		})
	}
}

// poolCPU is the CPU time (user and system) the fixture's workerd
// processes have used, from fields 14 and 15 of /proc/PID/stat.
func poolCPU(f *capFixture) time.Duration {
	var ticks int64
	for _, pid := range f.pool.PIDs() {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		if fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(fields) > 12 {
			utime, _ := strconv.ParseInt(fields[11], 10, 64)
			stime, _ := strconv.ParseInt(fields[12], 10, 64)
			ticks += utime + stime
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
