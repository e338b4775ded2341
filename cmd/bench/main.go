// Command bench measures the gateway against the alternatives in one run:
// a bare workerd loader Worker (fresh isolates with LOADER.load, warm ones
// with LOADER.get against isolate "reuse"), the in-runtime floor of isolate
// creation, one node process per execution, pool scaling, reuse against
// fresh, streaming delay, benign executions beside hostile ones, thousands
// of executions waiting at once, and memory over a soak. Runs alternate A/B so drift hits both sides; each figure is
// the median of repeats with their min–max. It prints the gateway and the
// bare loader in one table with their ratios and the targets, and writes
// bench/results/latest.json and latest.svg.
//
//	go run ./cmd/bench [-repeats 3] [-n 300] [-hostile 2000] [-inflight 100,1000,2000,5000] [-soak 20000] [-cpuprofile FILE]
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed bare.js
var bareWorker []byte

//go:embed node_runner.mjs
var nodeRunner []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	repeats    int
	n          int
	soak       int
	out        string
	cpuprofile string
	date       string
	hostile    int
	// inflight are the sizes of the in-flight run (executions awaiting 3 s
	// sent at once); inflightBare the largest also sent to bare workerd.
	inflight     []int
	inflightBare int
	log          io.Writer // the gateways' logs; nil: none
	// records runs the gateways as shipped: every execution recorded in an
	// SQLite store (storage.path's default is on).
	records bool
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.repeats, "repeats", 3, "repeats of each measurement (A/B alternated)")
	fs.IntVar(&o.n, "n", 300, "executions per latency/throughput measurement")
	fs.IntVar(&o.soak, "soak", 20000, "executions in the soak (0 skips it)")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results"), "where to write latest.json and latest.svg")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the gateway under load here (the concurrency runs; the warm runs go to NAME.warm.pprof)")
	fs.StringVar(&o.date, "compat-date", "2026-11-17", "guest compatibility date for every side")
	fs.IntVar(&o.hostile, "hostile", 2000, "executions in the hostile-neighbours run, one in five hostile (0 skips it)")
	fs.BoolVar(&o.records, "records", true, "record every execution in an SQLite store, as the gateway does by default (false: storage off)")
	fs.IntVar(&o.inflightBare, "inflight-bare", 2000, "the largest in-flight size also sent to bare workerd processes (unbounded there: each isolate stays in memory)")
	inflight := fs.String("inflight", "100,1000,2000,5000", "sizes of the in-flight run: executions awaiting 3 s sent at once to a gateway with its defaults (empty skips it)")
	logFile := fs.String("log", "", "write the gateways' logs to this file")
	only := fs.String("only", "", "comma-separated steps to run (floor, concurrency, warm, no-node, pool, reuse, node, streaming, hostile, inflight, soak); empty: all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for f := range strings.SplitSeq(*inflight, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("-inflight: %q is not a positive number", f)
		}
		o.inflight = append(o.inflight, n)
	}
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.log = f
	}
	env, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()

	report := &Report{Machine: machine(), Date: time.Now().UTC().Format(time.RFC3339), CompatibilityDate: o.date}
	steps := []struct {
		name string
		run  func(context.Context, *benchEnv, options, *Report) error
	}{
		{"floor", measureFloor},
		{"concurrency", measureConcurrency},
		{"warm", measureWarm},
		{"no-node", measureNoNode},
		{"pool", measurePool},
		{"reuse", measureReuse},
		{"node", measureNode},
		{"streaming", measureStreaming},
		{"hostile", measureHostile},
		{"inflight", measureInFlight},
		{"soak", measureSoak},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if *only != "" && !slices.Contains(strings.Split(*only, ","), s.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s...\n", s.name)
		if err := s.run(ctx, env, o, report); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	report.evaluate()
	report.print(stdout)
	return report.write(o.out)
}

// profile runs f with the CPU profiler on, if asked for.
func profile(path string, f func() error) error {
	if path == "" {
		return f()
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := pprof.StartCPUProfile(file); err != nil {
		return err
	}
	err = f()
	pprof.StopCPUProfile()
	return err
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s, %d CPUs (%s)", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host)
}

func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return errors.Join(os.WriteFile(filepath.Join(dir, "latest.svg"), []byte(r.svg()), 0o644))
}
