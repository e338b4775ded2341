package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
)

// comparison is what one gateway-against-bare measurement sends to each side.
type comparison struct {
	gateway, bare         []string // URLs, round-robin
	gatewayBody, bareBody []byte
	gatewayPIDs, barePIDs func() []int // each side's workerd processes
	levels                []int        // concurrencies; nil: 1, 2, 4 and 8
}

// measureConcurrency compares the gateway (fresh isolates) with as many bare
// workerd processes as its pool has, at concurrency 1, 2, 4 and 8.
func measureConcurrency(ctx context.Context, e *benchEnv, o options, r *Report) error {
	c := comparison{
		gateway:     []string{e.gateways[runtime.NumCPU()].srv.URL + "/execute"},
		bare:        e.bareURLs("/"),
		gatewayBody: gatewayBody(o.date, "fresh"),
		bareBody:    bareBody(o.date, guestFlags),
		gatewayPIDs: e.gateways[runtime.NumCPU()].backend.PIDs,
		barePIDs:    e.barePIDs,
	}
	return profile(o.cpuprofile, func() error {
		r.Concurrency = e.compare(ctx, o, c, r)
		return nil
	})
}

// measureWarm compares the gateway with isolate "reuse" with bare workerd
// processes serving the same code from LOADER.get under a fixed id; with
// -cpuprofile it profiles the gateway during these runs too.
func measureWarm(ctx context.Context, e *benchEnv, o options, r *Report) error {
	c := comparison{
		gateway:     []string{e.gateways[runtime.NumCPU()].srv.URL + "/execute"},
		bare:        e.bareURLs("/warm"),
		gatewayBody: gatewayBody(o.date, "reuse"),
		bareBody:    bareBody(o.date, guestFlags),
		gatewayPIDs: e.gateways[runtime.NumCPU()].backend.PIDs,
		barePIDs:    e.barePIDs,
	}
	r.warmProfile = warmProfile(o.cpuprofile)
	r.warmExecutions = 32*len(c.bare) + 4*o.repeats*o.n // the warm-up and the runs at 1, 2, 4 and 8
	return profile(r.warmProfile, func() error {
		r.Warm = e.compare(ctx, o, c, r)
		return nil
	})
}

// noNodeFlags turn Node compatibility off at a date where it is on by
// default (2026-08-04 on): what a guest that needs no node:* module can
// ask for to start its isolates in about 60% of the CPU.
var noNodeFlags = []string{"no_nodejs_compat", "no_nodejs_compat_v2"}

// measureNoNode compares the gateway with the bare loader, fresh isolates,
// for guests with noNodeFlags on both sides, at concurrency 1 and 4.
func measureNoNode(ctx context.Context, e *benchEnv, o options, r *Report) error {
	body, _ := json.Marshal(map[string]any{"code": helloCode, "compatibilityDate": o.date, "isolate": "fresh", "compatibilityFlags": noNodeFlags})
	c := comparison{
		gateway:     []string{e.gateways[runtime.NumCPU()].srv.URL + "/execute"},
		bare:        e.bareURLs("/"),
		gatewayBody: body,
		bareBody:    bareBody(o.date, noNodeFlags),
		gatewayPIDs: e.gateways[runtime.NumCPU()].backend.PIDs,
		barePIDs:    e.barePIDs,
		levels:      []int{1, 4},
	}
	r.NoNode = e.compare(ctx, o, c, r)
	return nil
}

// warmProfile is where the warm runs' CPU profile goes: beside the
// concurrency runs' one, as NAME.warm.pprof; none without -cpuprofile.
func warmProfile(path string) string {
	if path == "" {
		return ""
	}
	return strings.TrimSuffix(path, ".pprof") + ".warm.pprof"
}

// compare measures both sides of c at concurrency 1, 2, 4 and 8, o.repeats
// times each, alternating which side goes first so drift hits both. The
// ratios are taken per repeat, between the two runs made back to back. A
// warm-up at concurrency 8 first brings both sides to their steady state
// (connections open, code compiled, warm isolates created) so the first
// measured run does not pay for it.
func (e *benchEnv) compare(ctx context.Context, o options, c comparison, r *Report) []ConcurrencyRow {
	warmup := 32 * len(c.bare)
	r.Failures += e.load(ctx, c.gateway, c.gatewayBody, warmup, 8, `"success":true`).failures
	r.Failures += e.load(ctx, c.bare, c.bareBody, warmup, 8, "ok").failures
	var rows []ConcurrencyRow
	levels := c.levels
	if levels == nil {
		levels = []int{1, 2, 4, 8}
	}
	for _, conc := range levels {
		var g, b sideSamples
		var p50Ratio, tpRatio []float64
		for i := range o.repeats {
			sides := []func(){
				func() {
					g.addCPU(measureCPU(o.n, c.gatewayPIDs, func() {
						g.add(e.load(ctx, c.gateway, c.gatewayBody, o.n, conc, `"success":true`), r)
					}))
				},
				func() {
					b.addCPU(measureCPU(o.n, c.barePIDs, func() {
						b.add(e.load(ctx, c.bare, c.bareBody, o.n, conc, "ok"), r)
					}))
				},
			}
			if i%2 == 1 {
				slices.Reverse(sides)
			}
			for _, s := range sides {
				s()
			}
			p50Ratio = append(p50Ratio, g.p50[i]/b.p50[i])
			tpRatio = append(tpRatio, g.throughput[i]/b.throughput[i])
		}
		rows = append(rows, ConcurrencyRow{
			Concurrency: conc, Gateway: g.side(), Bare: b.side(),
			P50Ratio: stat(p50Ratio), ThroughputRatio: stat(tpRatio),
		})
	}
	return rows
}

// sideSamples collects one side's figures over the repeats.
type sideSamples struct{ p50, p99, throughput, process, runtime []float64 }

func (s *sideSamples) addCPU(c cpuSample) {
	s.process = append(s.process, c.process)
	s.runtime = append(s.runtime, c.runtime)
}

func (s *sideSamples) add(res loadRun, r *Report) {
	s.p50 = append(s.p50, ms(res.p(.5)))
	s.p99 = append(s.p99, ms(res.p(.99)))
	s.throughput = append(s.throughput, res.throughput())
	r.Failures += res.failures
}

func (s *sideSamples) side() Side {
	return Side{P50: stat(s.p50), P99: stat(s.p99), Throughput: stat(s.throughput),
		ProcessCPU: stat(s.process), RuntimeCPU: stat(s.runtime)}
}

// printComparison prints the fresh and warm comparisons as one table, and
// under it the targets that compare the gateway with the bare loader and
// the floor.
func (r *Report) printComparison(w io.Writer) {
	if len(r.Concurrency)+len(r.Warm)+len(r.NoNode) == 0 {
		return
	}
	fmt.Fprintf(w, "\nGateway vs bare loader Worker, same run, guest compatibility date %s, %d workerd processes a side\n", r.CompatibilityDate, runtime.NumCPU())
	fmt.Fprintln(w, "  fresh: gateway isolate \"fresh\" vs LOADER.load; warm: gateway isolate \"reuse\" vs LOADER.get(id, …) with a fixed id;")
	fmt.Fprintln(w, "  no-node: fresh, the guest's compatibilityFlags no_nodejs_compat,no_nodejs_compat_v2 on both sides")
	fmt.Fprintln(w, "  medians of repeats (min–max); ratios gateway/bare, taken per repeat between back-to-back runs")
	const cell = "%-18s"
	fmt.Fprintf(w, "  %-7s %-4s | "+cell+cell+cell+"| "+cell+cell+cell+"| %-18s %s\n",
		"", "conc", "gateway p50 ms", "p99 ms", "exec/s", "bare p50 ms", "p99 ms", "exec/s", "p50 ratio", "exec/s ratio")
	for _, block := range []struct {
		name string
		rows []ConcurrencyRow
	}{{"fresh", r.Concurrency}, {"warm", r.Warm}, {"no-node", r.NoNode}} {
		for _, c := range block.rows {
			fmt.Fprintf(w, "  %-7s %-4d | "+cell+cell+cell+"| "+cell+cell+cell+"| %-18s %s\n", block.name, c.Concurrency,
				c.Gateway.P50.short(), c.Gateway.P99.short(), c.Gateway.Throughput.short(),
				c.Bare.P50.short(), c.Bare.P99.short(), c.Bare.Throughput.short(),
				c.P50Ratio.short(), c.ThroughputRatio.short())
		}
	}
	r.printCPU(w)
	r.printProfileParts(w, r.warmProfile, r.warmExecutions)
	r.printTargets(w, "Targets against the bare loader and the floor", true)
}

// printCPU prints where each side's CPU went per execution, from the
// same runs: the gateway's own share is the bench process's CPU on the
// gateway side less the load generator's (the bench process's on the bare
// side, which sends the same requests).
func (r *Report) printCPU(w io.Writer) {
	fmt.Fprintln(w, "\nCPU per execution, µs (medians of repeats): the gateway process (load generator taken off), its workerd; the bare workerd")
	fmt.Fprintf(w, "  %-7s %-4s | %-9s %-9s %-9s | %-9s | %s\n", "", "conc", "gateway", "its wd", "total", "bare wd", "ratio")
	for _, block := range []struct {
		name string
		rows []ConcurrencyRow
	}{{"fresh", r.Concurrency}, {"warm", r.Warm}, {"no-node", r.NoNode}} {
		for _, c := range block.rows {
			gw := c.Gateway.ProcessCPU.Median - c.Bare.ProcessCPU.Median
			total := gw + c.Gateway.RuntimeCPU.Median
			bare := c.Bare.RuntimeCPU.Median
			ratio := 0.0
			if bare > 0 {
				ratio = total / bare
			}
			fmt.Fprintf(w, "  %-7s %-4d | %-9.0f %-9.0f %-9.0f | %-9.0f | %.2f\n", block.name, c.Concurrency,
				gw, c.Gateway.RuntimeCPU.Median, total, bare, ratio)
		}
	}
}

// short is s in a table cell: the median, and the range if the repeats
// differ, with fewer decimals for larger figures.
func (s Stat) short() string {
	f := func(v float64) string {
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f", v)
		case v >= 10:
			return fmt.Sprintf("%.1f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	if s.Min == s.Max {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Median), f(s.Min), f(s.Max))
}
