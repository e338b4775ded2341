package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/store"
)

// benchEnv is everything the benchmark talks to.
type benchEnv struct {
	workerd  string
	dir      string
	client   *http.Client
	gateways map[int]*gateway // by runtime processes: 1 and one per CPU
	bare     []*bareWorkerd   // one per CPU
}

type gateway struct {
	backend *local.Pool
	srv     *httptest.Server
	svc     *executions.Service
	store   store.Store // nil: records off
	dir     string      // the store's directory
}

// close stops the gateway and removes its store.
func (g *gateway) close() {
	g.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	g.svc.Close(ctx)
	cancel()
	if g.store != nil {
		g.store.Close()
		os.RemoveAll(g.dir)
	}
	g.backend.Close()
}

type bareWorkerd struct {
	cmd *exec.Cmd
	url string
}

func start(ctx context.Context, o options) (*benchEnv, error) {
	workerd, err := local.FindWorkerd("")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gateway-bench-")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{
		workerd:  workerd,
		dir:      dir,
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}},
		gateways: map[int]*gateway{},
	}
	for _, n := range []int{1, runtime.NumCPU()} {
		if _, ok := e.gateways[n]; ok {
			continue
		}
		g, err := startGateway(n, o)
		if err != nil {
			e.close()
			return nil, err
		}
		e.gateways[n] = g
	}
	for range runtime.NumCPU() {
		b, err := startBare(ctx, workerd, dir, len(e.bare))
		if err != nil {
			e.close()
			return nil, err
		}
		e.bare = append(e.bare, b)
	}
	return e, nil
}

func startGateway(processes int, o options) (*gateway, error) {
	log := zerolog.Nop()
	if o.log != nil {
		log = zerolog.New(o.log).With().Timestamp().Int("processes", processes).Logger()
	}
	workerd, err := local.FindWorkerd("")
	if err != nil {
		return nil, err
	}
	// The memory bound and the spare process are the default configuration's
	// (runtime.memory_limit_mb, runtime.spare): the hostile run's ArrayBuffer
	// bombs count on the one, its spinners on the other.
	backend, err := local.New(local.Config{Workerd: workerd, Processes: processes, QueueSize: 1024, MemoryLimit: 1024 << 20, Spare: true}, log)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(backend.PIDs()) < processes {
		if time.Now().After(deadline) {
			backend.Close()
			return nil, fmt.Errorf("gateway with %d processes not ready", processes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	g := &gateway{backend: backend}
	if o.records {
		if err := g.openRecords(); err != nil {
			backend.Close()
			return nil, err
		}
	}
	m := metrics.New()
	g.svc = executions.New(executions.Options{
		Backend: backend, Store: g.store, Metrics: m, Log: log,
		Limits: executions.Limits{
			CompatibilityDate: o.date, DefaultTimeout: 30 * time.Second, MaxTimeout: 60 * time.Second,
			MaxResponseBytes: 1 << 20, MaxLogLineBytes: 64 << 10, MaxLogBytes: 1 << 20,
			MaxCodeBytes: 1 << 20, MaxModules: 16, MaxEnvBytes: 1 << 20,
		},
	})
	g.svc.Start()
	g.srv = httptest.NewServer(api.NewHandler(log, g.svc, api.Options{MaxRequestBytes: 1 << 20, Metrics: m,
		ClientBufferBytes: 3 << 20, MaxLifetime: 90 * time.Second}))
	return g, nil
}

// openRecords gives the gateway an SQLite store of execution records in a
// directory of its own, as storage.path does by default.
func (g *gateway) openRecords() error {
	dir, err := os.MkdirTemp("", "bench-records-")
	if err != nil {
		return err
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "executions.db"))
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	g.dir, g.store = dir, st
	return nil
}

const bareConfig = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "bare", worker = .bare)],
  sockets = [(name = "http", address = "%s", http = (), service = "bare")],
);
const bare :Workerd.Worker = (
  modules = [(name = "bare.js", esModule = embed "bare.js")],
  compatibilityDate = "2026-11-17",
  bindings = [(name = "LOADER", workerLoader = ())],
);
`

func startBare(ctx context.Context, workerd, dir string, i int) (*bareWorkerd, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	sub := filepath.Join(dir, "bare"+strconv.Itoa(i))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(sub, "bare.js"), bareWorker, 0o644); err != nil {
		return nil, err
	}
	cfg := filepath.Join(sub, "config.capnp")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(bareConfig, addr)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(workerd, "serve", "--experimental", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bareWorkerd{cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(b.url + "/health")
		if err == nil {
			resp.Body.Close()
			return b, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("bare workerd did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *benchEnv) close() {
	for _, g := range e.gateways {
		g.close()
	}
	for _, b := range e.bare {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
	os.RemoveAll(e.dir)
}

// barePIDs are the bare workerd processes.
func (e *benchEnv) barePIDs() []int {
	var pids []int
	for _, b := range e.bare {
		pids = append(pids, b.cmd.Process.Pid)
	}
	return pids
}

// bareURLs is path on every bare workerd process.
func (e *benchEnv) bareURLs(path string) []string {
	var urls []string
	for _, b := range e.bare {
		urls = append(urls, b.url+path)
	}
	return urls
}

// loadRun is one measurement: latencies of n requests sent with conc at once.
type loadRun struct {
	latencies []time.Duration
	elapsed   time.Duration
	failures  int64
}

func (r loadRun) p(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func (r loadRun) throughput() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

// load sends n POSTs of body, conc at a time, round-robin over urls, and
// counts an answer without want in it as a failure.
func (e *benchEnv) load(ctx context.Context, urls []string, body []byte, n, conc int, want string) loadRun {
	var next atomic.Int64
	var failures atomic.Int64
	lat := make([]time.Duration, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				resp, err := e.client.Post(urls[i%len(urls)], "application/json", bytes.NewReader(body))
				if err != nil {
					failures.Add(1)
					continue
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t)
				if resp.StatusCode != 200 || !strings.Contains(string(data), want) {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return loadRun{latencies: lat, elapsed: time.Since(start), failures: failures.Load()}
}
