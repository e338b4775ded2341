package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// hostileGuests are the attacks of the mixed-tenant run, one in five
// executions, in turn: each ends badly, and none may cost a neighbour.
var hostileGuests = []struct {
	name    string
	code    string
	timeout int // ms; 0: the default
}{
	{"spin to its deadline", `export default { fetch() { for (;;) {} } }`, 1000},
	{"throw", `export default { fetch() { throw new Error("boom"); } }`, 0},
	{"never resolve", `export default { fetch() { return new Promise(() => {}); } }`, 1000},
	{"log flood", `export default { fetch() { for (let i = 0; i < 100000; i++) console.log("flood " + i); return new Response("ok"); } }`, 0},
	{"ArrayBuffer bomb", `export default { fetch() { const a = []; for (;;) a.push(new Uint8Array(64 << 20).fill(1)); } }`, 0},
	{"huge line", `export default { fetch() { return new Response("\x01".repeat(1 << 20)); } }`, 0},
}

// HostileMix is the mixed-tenant run: benign latency alone and beside
// hostile neighbours, and how many benign executions failed.
type HostileMix struct {
	Executions      int                       `json:"executions"`
	Hostile         int                       `json:"hostile"`
	BenignFailures  int64                     `json:"benignFailures"`
	BenignAloneP99  float64                   `json:"benignAloneP99Ms"`
	BenignMixedP99  float64                   `json:"benignMixedP99Ms"`
	BenignMixedP50  float64                   `json:"benignMixedP50Ms"`
	Elapsed         float64                   `json:"elapsedSeconds"`
	HostileOutcomes map[string]map[string]int `json:"hostileOutcomes"`
	BenignFailed    map[string]int            `json:"benignFailed"`
}

// measureHostile runs o.hostile executions at concurrency 8 on a gateway
// with one process per CPU and the default pool settings, one in five
// hostile, after as many benign ones alone for the baseline p99.
func measureHostile(ctx context.Context, e *benchEnv, o options, r *Report) error {
	if o.hostile <= 0 {
		return nil
	}
	g, err := startGateway(runtime.NumCPU(), o)
	if err != nil {
		return err
	}
	defer g.close()
	url := g.srv.URL + "/execute"
	benign := gatewayBody(o.date, "fresh")

	alone := e.load(ctx, []string{url}, benign, o.hostile*4/5, 8, `"success":true`)
	r.Failures += alone.failures

	mix := &HostileMix{Executions: o.hostile, HostileOutcomes: map[string]map[string]int{}, BenignFailed: map[string]int{}}
	var mu sync.Mutex
	var next atomic.Int64
	var benignLat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.hostile || ctx.Err() != nil {
					return
				}
				if i%5 != 4 {
					t := time.Now()
					outcome := e.outcome(url, benign)
					mu.Lock()
					benignLat = append(benignLat, time.Since(t))
					if outcome != "success" {
						mix.BenignFailures++
						mix.BenignFailed[outcome]++
					}
					mu.Unlock()
					continue
				}
				h := hostileGuests[(i/5)%len(hostileGuests)]
				req := map[string]any{"code": h.code, "compatibilityDate": o.date}
				if h.timeout > 0 {
					req["timeoutMs"] = h.timeout
				}
				body, _ := json.Marshal(req)
				outcome := e.outcome(url, body)
				mu.Lock()
				mix.Hostile++
				if mix.HostileOutcomes[h.name] == nil {
					mix.HostileOutcomes[h.name] = map[string]int{}
				}
				mix.HostileOutcomes[h.name][outcome]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	mix.Elapsed = time.Since(start).Seconds()
	mixed := loadRun{latencies: benignLat}
	mix.BenignAloneP99 = ms(alone.p(.99))
	mix.BenignMixedP99 = ms(mixed.p(.99))
	mix.BenignMixedP50 = ms(mixed.p(.5))
	r.Hostile = mix
	return nil
}

// outcome sends body and names how the execution ended: its error code,
// "success", or the HTTP status when there was no result.
func (e *benchEnv) outcome(url string, body []byte) string {
	resp, err := e.client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return "transport error"
	}
	defer resp.Body.Close()
	var res struct {
		Success bool `json:"success"`
		Error   *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		var problem struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &problem)
		return fmt.Sprintf("HTTP %d %s", resp.StatusCode, problem.Code)
	}
	if json.Unmarshal(data, &res) != nil {
		return "undecodable answer"
	}
	if res.Error != nil {
		return res.Error.Code
	}
	return "success"
}

func (m *HostileMix) print(w io.Writer) {
	fmt.Fprintf(w, "\nHostile neighbours (%d executions at concurrency 8, %d hostile, %.1f s)\n", m.Executions, m.Hostile, m.Elapsed)
	fmt.Fprintf(w, "  benign failures %d %v; benign p99 alone %.2f ms, beside hostile %.2f ms (%.2f×); benign p50 beside hostile %.2f ms\n",
		m.BenignFailures, m.BenignFailed, m.BenignAloneP99, m.BenignMixedP99, m.BenignMixedP99/m.BenignAloneP99, m.BenignMixedP50)
	for _, h := range hostileGuests {
		fmt.Fprintf(w, "  %-22s %v\n", h.name, m.HostileOutcomes[h.name])
	}
}
