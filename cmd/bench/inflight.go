package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// awaitGuest waits 3 s on a timer: an execution that holds an isolate and
// no CPU, as one waiting on a fetch or a capability call does.
const awaitGuest = `export default { async fetch() { await new Promise((r) => setTimeout(r, 3000)); return new Response("ok"); } }`

// InFlightRun is one step of the in-flight run: N executions each awaiting
// 3 s, sent at once, on a gateway with its default settings (the real
// binary, as `make run` starts it) or on bare workerd processes.
type InFlightRun struct {
	Side      string         `json:"side"` // gateway or bare
	N         int            `json:"n"`
	Completed int            `json:"completed"`
	Refused   int            `json:"refused"` // 503 with Retry-After
	Failed    map[string]int `json:"failed"`  // anything else, by outcome
	P50       float64        `json:"p50Ms"`   // of the completed, from the send
	P99       float64        `json:"p99Ms"`
	Last      float64        `json:"lastSeconds"` // the last answer, from the send
	// PeakRunning is the most executions the runtime ran at once (the
	// gateway's gateway_runtime_executions; bare: those sent).
	PeakRunning     int     `json:"peakRunning"`
	GatewayIdleMiB  float64 `json:"gatewayIdleMiB,omitempty"`
	GatewayPeakMiB  float64 `json:"gatewayPeakMiB,omitempty"`
	WorkerdIdleMiB  float64 `json:"workerdIdleMiB"`
	WorkerdPeakMiB  float64 `json:"workerdPeakMiB"`
	PerIsolateMiB   float64 `json:"perIsolateMiB"`               // workerd's growth per execution running
	GatewayPerExKiB float64 `json:"gatewayPerExecKiB,omitempty"` // the gateway's growth per execution held
	LoadBefore      string  `json:"loadBefore"`                  // /proc/loadavg before the step
}

// measureInFlight sends o.inflight executions awaiting 3 s at once to a
// gateway started as `make run` starts it (its own process, every default,
// records on, no API keys), one size after another, then the sizes up to
// o.inflightBare to the bare workerd processes.
func measureInFlight(ctx context.Context, e *benchEnv, o options, r *Report) error {
	if len(o.inflight) == 0 {
		return nil
	}
	g, err := startGatewayBinary(ctx, e, o)
	if err != nil {
		return err
	}
	defer g.stop()
	body, _ := json.Marshal(map[string]any{"code": awaitGuest, "compatibilityDate": o.date})
	for _, n := range o.inflight {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.settle(ctx)
		run := e.burst(ctx, "gateway", []string{g.base + "/execute"}, body, n, g.pid, g.workerdPIDs, g.running)
		r.InFlight = append(r.InFlight, run)
		fmt.Fprintf(os.Stderr, "bench: inflight gateway %d: %d completed, %d refused, failed %v, p99 %.0f ms, last %.1f s\n",
			n, run.Completed, run.Refused, run.Failed, run.P99, run.Last)
	}
	bare, _ := json.Marshal(map[string]any{"code": awaitGuest, "compatibilityDate": o.date})
	for _, n := range o.inflight {
		if n > o.inflightBare || ctx.Err() != nil {
			continue
		}
		time.Sleep(3 * time.Second) // the isolates of the last run released
		run := e.burst(ctx, "bare", e.bareURLs("/"), bare, n, 0, e.barePIDs, nil)
		run.PeakRunning = n
		if grown := run.WorkerdPeakMiB - run.WorkerdIdleMiB; n > 0 {
			run.PerIsolateMiB = grown / float64(n)
		}
		r.InFlight = append(r.InFlight, run)
	}
	return nil
}

// burst sends n POSTs of body at once, round-robin over urls, and measures
// them: outcomes, latency from the send, and the resident memory of the
// process gw (0: none) and of the workerd processes, sampled as they run.
func (e *benchEnv) burst(ctx context.Context, side string, urls []string, body []byte, n, gw int, workerd func() []int, running func() int) InFlightRun {
	run := InFlightRun{Side: side, N: n, Failed: map[string]int{}, LoadBefore: loadavg()}
	sum := func(pids []int) (b int64) {
		for _, pid := range pids {
			b += local.ResidentBytes(pid)
		}
		return b
	}
	gwIdle, wdIdle := local.ResidentBytes(gw), sum(workerd())
	var gwPeak, wdPeak int64
	done := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if gw > 0 {
				gwPeak = max(gwPeak, local.ResidentBytes(gw))
			}
			wdPeak = max(wdPeak, sum(workerd()))
			if running != nil {
				run.PeakRunning = max(run.PeakRunning, running())
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: n, DisableCompression: true}}
	defer client.CloseIdleConnections()
	type answer struct {
		outcome string
		at      time.Duration
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var sent time.Time
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, urls[i%len(urls)], bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			<-start
			answers[i] = answer{outcome: send(client, req), at: time.Since(sent)}
		})
	}
	sent = time.Now()
	close(start)
	wg.Wait()
	close(done)
	sampled.Wait()
	var lat []time.Duration
	for _, a := range answers {
		run.Last = max(run.Last, a.at.Seconds())
		switch a.outcome {
		case "success", "ok":
			run.Completed++
			lat = append(lat, a.at)
		case "refused":
			run.Refused++
		default:
			run.Failed[a.outcome]++
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		run.P50, run.P99 = ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)])
	}
	const mib = 1 << 20
	run.WorkerdIdleMiB, run.WorkerdPeakMiB = float64(wdIdle)/mib, float64(wdPeak)/mib
	if run.PeakRunning > 0 {
		run.PerIsolateMiB = (run.WorkerdPeakMiB - run.WorkerdIdleMiB) / float64(run.PeakRunning)
	}
	if gw > 0 {
		run.GatewayIdleMiB, run.GatewayPeakMiB = float64(gwIdle)/mib, float64(gwPeak)/mib
		run.GatewayPerExKiB = float64(gwPeak-gwIdle) / 1024 / float64(n)
	}
	return run
}

// send sends req and names its outcome: success, refused (503 with
// Retry-After), the error code, or the HTTP status or transport error.
func send(client *http.Client, req *http.Request) string {
	resp, err := client.Do(req)
	if err != nil {
		return "transport error"
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return "refused"
	case resp.StatusCode != http.StatusOK:
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &p)
		return fmt.Sprintf("HTTP %d %s", resp.StatusCode, p.Code)
	}
	if string(data) == "ok" {
		return "ok" // bare workerd: the guest's body as it is
	}
	var res struct {
		Success bool `json:"success"`
		Error   *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	switch {
	case json.Unmarshal(data, &res) != nil:
		return "undecodable answer"
	case res.Error != nil:
		return res.Error.Code
	case !res.Success:
		return "not success"
	}
	return "success"
}

// loadavg is the machine's load average, as /proc/loadavg has it.
func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// gatewayProcess is the real gateway binary, running with its defaults.
type gatewayProcess struct {
	cmd  *exec.Cmd
	pid  int
	base string
	done chan struct{}
}

// startGatewayBinary builds cmd/gateway and runs `gateway serve` on a free
// loopback port with every runtime setting at its default, its records in
// a directory of its own.
func startGatewayBinary(ctx context.Context, e *benchEnv, o options) (*gatewayProcess, error) {
	bin := filepath.Join(e.dir, "gateway")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gateway").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "GATEWAY_RUNTIME_WORKERD="+e.workerd, "GATEWAY_STORAGE_PATH="+filepath.Join(e.dir, "inflight", "executions.db"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gatewayProcess{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		defer close(g.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var entry struct {
				Message string `json:"message"`
				Listen  string `json:"listen"`
			}
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Message == "gateway listening" {
				listening <- entry.Listen
			}
			if o.log != nil {
				fmt.Fprintf(o.log, "%s\n", sc.Bytes())
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case addr := <-listening:
		g.base = "http://" + addr
	case <-g.done:
		return nil, fmt.Errorf("gateway exited before listening")
	case <-time.After(60 * time.Second):
		g.stop()
		return nil, fmt.Errorf("gateway did not listen within 60 s")
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(g.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("gateway not ready within 60 s")
		}
	}
}

func (g *gatewayProcess) stop() {
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// workerdPIDs are the gateway's workerd processes: its children.
func (g *gatewayProcess) workerdPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(g.pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// running is gateway_runtime_executions from the gateway's metrics.
func (g *gatewayProcess) running() int {
	return int(g.metric("gateway_runtime_executions"))
}

// metric reads one unlabelled gauge from /metrics; 0 if absent.
func (g *gatewayProcess) metric(name string) float64 {
	resp, err := http.Get(g.base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// settle waits until the gateway runs and queues nothing (at most a minute).
func (g *gatewayProcess) settle(ctx context.Context) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		if g.running() == 0 && g.metric("gateway_executions_queued") == 0 {
			time.Sleep(time.Second)
			return
		}
	}
}

func printInFlight(w io.Writer, runs []InFlightRun) {
	if len(runs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nIn flight: N executions awaiting 3 s, sent at once (gateway: the real binary, defaults)\n")
	fmt.Fprintf(w, "  %-7s %6s %9s %7s %-22s %8s %8s %6s %8s %9s %9s %8s %8s  %s\n",
		"side", "N", "completed", "refused", "failed", "p50 ms", "p99 ms", "last s", "running", "gw MiB", "wd MiB", "MiB/iso", "gw KiB/ex", "load before")
	for _, r := range runs {
		failed := "0"
		if len(r.Failed) > 0 {
			failed = fmt.Sprint(r.Failed)
		}
		fmt.Fprintf(w, "  %-7s %6d %9d %7d %-22s %8.0f %8.0f %6.1f %8d %9.0f %9.0f %8.2f %8.1f  %s\n",
			r.Side, r.N, r.Completed, r.Refused, failed, r.P50, r.P99, r.Last, r.PeakRunning,
			r.GatewayPeakMiB, r.WorkerdPeakMiB, r.PerIsolateMiB, r.GatewayPerExKiB, r.LoadBefore)
	}
}
