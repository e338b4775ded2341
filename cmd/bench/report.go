package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Stat is the median of repeats and their range.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func stat(samples []float64) Stat {
	if len(samples) == 0 {
		return Stat{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Stat{Median: s[len(s)/2], Min: s[0], Max: s[len(s)-1]}
}

func (s Stat) String() string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

// Figure is one named measurement.
type Figure struct {
	Name  string   `json:"name"`
	Unit  string   `json:"unit"`
	Stat  Stat     `json:"stat"`
	Flags []string `json:"flags,omitempty"` // the guest's compatibility flags, where they vary
}

// Side is one side of a latency/throughput comparison.
type Side struct {
	P50        Stat `json:"p50Ms"`
	P99        Stat `json:"p99Ms"`
	Throughput Stat `json:"throughput"`
	// CPU per execution, µs: of the bench's own process (for the gateway
	// side the gateway and the load generator, for the bare side the load
	// generator alone) and of the side's workerd processes.
	ProcessCPU Stat `json:"processCpuUs"`
	RuntimeCPU Stat `json:"runtimeCpuUs"`
}

// ConcurrencyRow compares gateway and bare loader at one concurrency. The
// ratios are gateway/bare, one per repeat between back-to-back runs.
type ConcurrencyRow struct {
	Concurrency     int  `json:"concurrency"`
	Gateway         Side `json:"gateway"`
	Bare            Side `json:"bare"`
	P50Ratio        Stat `json:"p50Ratio"`
	ThroughputRatio Stat `json:"throughputRatio"`
}

// MemorySample is resident memory after some soak executions.
type MemorySample struct {
	Executions int     `json:"executions"`
	GatewayMiB float64 `json:"gatewayMiB"`
	WorkerdMiB float64 `json:"workerdMiB"`
}

// Target is one goal of the suite and whether this run met it. Against is
// true for the goals that compare the gateway with the bare loader or the
// floor, printed beside the comparison table.
type Target struct {
	Goal    string `json:"goal"`
	Value   string `json:"value"`
	Met     bool   `json:"met"`
	Margin  string `json:"margin"`
	Against bool   `json:"againstBare"`
}

// Report is everything one run measured.
type Report struct {
	Machine           string           `json:"machine"`
	Date              string           `json:"date"`
	CompatibilityDate string           `json:"compatibilityDate"`
	Floor             []Figure         `json:"floor"`
	Concurrency       []ConcurrencyRow `json:"concurrency"` // fresh isolates
	Warm              []ConcurrencyRow `json:"warm"`        // gateway "reuse" vs LOADER.get
	NoNode            []ConcurrencyRow `json:"noNode"`      // fresh, guests without Node compatibility
	Pool              []Figure         `json:"pool"`
	Reuse             []Figure         `json:"reuse"`
	Node              []Figure         `json:"node"`
	Streaming         []Figure         `json:"streaming"`
	Hostile           *HostileMix      `json:"hostile,omitempty"`
	InFlight          []InFlightRun    `json:"inflight,omitempty"`
	Soak              []MemorySample   `json:"soak"`
	SoakThroughput    float64          `json:"soakThroughput"`
	SoakFailures      int64            `json:"soakFailures"`
	Failures          int64            `json:"failures"`
	Targets           []Target         `json:"targets"`
	// warmProfile is the warm runs' CPU profile ("" if none), of
	// warmExecutions gateway executions.
	warmProfile    string
	warmExecutions int
}

func row(rows []ConcurrencyRow, conc int) *ConcurrencyRow {
	for i := range rows {
		if rows[i].Concurrency == conc {
			return &rows[i]
		}
	}
	return nil
}

// floorFor is the floor measured with the given guest flags, or nil.
func (r *Report) floorFor(flags []string) *Figure {
	for i := range r.Floor {
		if slices.Equal(r.Floor[i].Flags, flags) {
			return &r.Floor[i]
		}
	}
	return nil
}

// target records one goal: value against limit, at most or at least.
func (r *Report) target(goal string, value, limit float64, atMost, against bool, format string) {
	met := value <= limit
	if !atMost {
		met = value >= limit
	}
	margin := ""
	if limit != 0 {
		margin = fmt.Sprintf("%+.0f%% of the target", 100*(value-limit)/limit)
	}
	r.Targets = append(r.Targets, Target{Goal: goal, Value: fmt.Sprintf(format, value), Met: met, Margin: margin, Against: against})
}

// evaluateAgainstBare checks the performance targets: the gateway against
// the bare loader, fresh and warm, and against the in-runtime floor.
func (r *Report) evaluateAgainstBare() {
	if c1 := row(r.Concurrency, 1); c1 != nil {
		r.target("fresh: gateway p50 at concurrency 1 ≤ 1.10× the bare loader", c1.P50Ratio.Median, 1.10, true, true, "%.2f×")
	}
	if c4 := row(r.Concurrency, 4); c4 != nil {
		r.target("fresh: gateway exec/s at concurrency 4 ≥ 0.95× the bare loader", c4.ThroughputRatio.Median, 0.95, false, true, "%.2f×")
	}
	if c1, floor := row(r.Concurrency, 1), r.floorFor(guestFlags); c1 != nil && floor != nil {
		r.target("fresh: gateway p50 at concurrency 1 ≤ 1.3× the in-runtime floor (same flags)",
			c1.Gateway.P50.Median/floor.Stat.Median, 1.3, true, true, "%.2f×")
	}
	if w4 := row(r.Warm, 4); w4 != nil {
		r.target("warm: gateway reuse exec/s at concurrency 4 ≥ 0.8× bare LOADER.get", w4.ThroughputRatio.Median, 0.8, false, true, "%.2f×")
	}
}

// evaluate checks the suite's targets.
func (r *Report) evaluate() {
	r.evaluateAgainstBare()
	add := func(goal string, value, limit float64, atMost bool, format string) {
		r.target(goal, value, limit, atMost, false, format)
	}
	if len(r.Node) > 0 {
		if c := row(r.Concurrency, 4); c != nil {
			add("≥ 10× the throughput of node per execution", c.Gateway.Throughput.Median/r.Node[0].Stat.Median, 10, false, "%.1f×")
		}
	}
	if len(r.Reuse) >= 2 {
		add("reuse ≥ 5× the throughput of fresh", r.Reuse[1].Stat.Median/r.Reuse[0].Stat.Median, 5, false, "%.2f×")
	}
	if len(r.Soak) >= 2 {
		first, last := r.Soak[0], r.Soak[len(r.Soak)-1]
		before, after := first.GatewayMiB+first.WorkerdMiB, last.GatewayMiB+last.WorkerdMiB
		add("flat memory across the soak (growth ≤ 10%)", after/before, 1.10, true, "%.2f×")
	}
	if m := r.Hostile; m != nil && m.BenignAloneP99 > 0 {
		add("benign executions beside hostile ones: failures", float64(m.BenignFailures), 0, true, "%.0f")
		add("benign p99 beside hostile ≤ 3× benign p99 alone", m.BenignMixedP99/m.BenignAloneP99, 3, true, "%.2f×")
	}
	if len(r.Streaming) > 0 {
		add("console.log to client p50 < 2 ms", r.Streaming[0].Stat.Median, 2, true, "%.2f ms")
	}
}

func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "Dynamic Workers gateway benchmark — %s, %s, guest compatibility date %s\n", r.Machine, r.Date, r.CompatibilityDate)
	fmt.Fprintf(w, "medians of repeats (min–max); failed requests: %d\n\n", r.Failures)
	fmt.Fprintln(w, "Floor: isolate creation inside one workerd request")
	for _, f := range r.Floor {
		fmt.Fprintf(w, "  %-48s %s %s\n", f.Name, f.Stat, f.Unit)
	}
	r.printComparison(w)
	for _, block := range []struct {
		title string
		figs  []Figure
	}{{"Pool scaling (concurrency 8)", r.Pool}, {"Reuse vs fresh", r.Reuse}, {"Node per execution", r.Node}, {"Streaming", r.Streaming}} {
		if len(block.figs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", block.title)
		for _, f := range block.figs {
			fmt.Fprintf(w, "  %-48s %s %s\n", f.Name, f.Stat, f.Unit)
		}
	}
	if r.Hostile != nil {
		r.Hostile.print(w)
	}
	printInFlight(w, r.InFlight)
	if len(r.Soak) > 0 {
		fmt.Fprintf(w, "\nSoak (%.0f exec/s, %d failed): resident memory\n", r.SoakThroughput, r.SoakFailures)
		for _, s := range r.Soak {
			fmt.Fprintf(w, "  after %6d: gateway %6.1f MiB, workerd %6.1f MiB\n", s.Executions, s.GatewayMiB, s.WorkerdMiB)
		}
	}
	r.printTargets(w, "Other targets", false)
}

// printTargets prints the targets whose Against is against under title.
func (r *Report) printTargets(w io.Writer, title string, against bool) {
	printed := false
	for _, t := range r.Targets {
		if t.Against != against {
			continue
		}
		if !printed {
			fmt.Fprintf(w, "\n%s\n", title)
			printed = true
		}
		mark := "MET   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %-80s %-10s %s\n", mark, t.Goal, t.Value, t.Margin)
	}
}

// svg draws throughput by concurrency, gateway against bare, as bars.
func (r *Report) svg() string {
	var b strings.Builder
	width, height := 640, 360
	maxV := 1.0
	for _, c := range r.Concurrency {
		maxV = max(maxV, c.Gateway.Throughput.Median, c.Bare.Throughput.Median)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="20" y="24" font-size="15">Fresh-isolate throughput (exec/s): gateway vs bare loader</text>`+"\n")
	fmt.Fprintf(&b, `<rect x="440" y="36" width="12" height="12" fill="#2b6cb0"/><text x="458" y="46">gateway</text>`+"\n")
	fmt.Fprintf(&b, `<rect x="530" y="36" width="12" height="12" fill="#a0aec0"/><text x="548" y="46">bare workerd</text>`+"\n")
	base, plotH := 320.0, 240.0
	for i, c := range r.Concurrency {
		x := 60 + i*140
		for j, v := range []float64{c.Gateway.Throughput.Median, c.Bare.Throughput.Median} {
			h := plotH * v / maxV
			color := []string{"#2b6cb0", "#a0aec0"}[j]
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="50" height="%.1f" fill="%s"/>`+"\n", x+j*55, base-h, h, color)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f">%.0f</text>`+"\n", x+j*55+8, base-h-4, v)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.0f">concurrency %d</text>`+"\n", x+10, base+18, c.Concurrency)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
