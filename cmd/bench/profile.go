package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	pprofile "github.com/google/pprof/profile"
)

// A part of the gateway process's work, as its CPU profile shows it: a
// sample is the first part whose pattern one of its frames contains,
// frames read from the leaf up, so the innermost named part wins (the
// validation inside the handler, not the handler).
type part struct {
	name     string
	patterns []string
}

// parts are the gateway process's parts on the warm path, in the order
// they are printed.
var parts = []part{
	{"load generator (the bench's own client)", []string{"main.(*benchEnv).load"}},
	{"decode and validate the request", []string{"executions.validateExecute", "execution.DecodeRequest", "api.readJSONObject", "executions.grantCapabilities"}},
	{"reuse key and code hash (SHA-256)", []string{"executions.reuseKey", "executions.codeHash"}},
	{"record: events on the request path", []string{"executions.(*recorder)", "executions.(*Service).recordSync"}},
	{"record: the SQLite writer (and the store's other work)", []string{"executions.(*writer)", "internal/store."}},
	{"collector (masking, caps) and the audit line", []string{"executions.(*collector)", "executions.observe", "executions.audit"}},
	{"the call to the runtime (job out, events in)", []string{"internal/loader/"}},
	{"the answer (JSON result, outbox)", []string{"api.(*aggregateSink)", "api.(*streamSink)", "api.(*outbox)", "api.newSink"}},
	{"the rest of the service (admission, quotas, spans)", []string{"internal/executions."}},
	{"access line, metrics and ids", []string{"api.accessLog.func", "api.withRequestID", "api.startExecution", "hlog.", "prometheus"}},
	{"routing, auth, middleware", []string{"go-chi/chi", "internal/api."}},
	{"HTTP server (net/http: read request, write response)", []string{"net/http.(*conn).serve"}},
	{"HTTP client loops (the load generator's and the gateway's to the runtime)", []string{"net/http.(*persistConn)"}},
	{"Go runtime: GC", []string{"runtime.gcBgMarkWorker", "runtime.gcAssist", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"Go runtime: scheduler, timers, network poller", []string{"runtime.schedule", "runtime.findRunnable", "runtime.mcall", "runtime.mstart", "runtime.netpoll"}},
}

// profileParts reads the CPU profile at path and returns the CPU time of
// each part (by parts' index; one more for the rest) and in all.
func profileParts(path string) ([]float64, float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	p, err := pprofile.Parse(f)
	if err != nil {
		return nil, 0, err
	}
	cpu := len(p.SampleType) - 1 // the last sample value is CPU time in nanoseconds
	out := make([]float64, len(parts)+1)
	total := 0.0
	for _, s := range p.Sample {
		v := float64(s.Value[cpu])
		total += v
		out[partOf(s)] += v
	}
	return out, total, nil
}

// partOf is the index in parts of the part sample s belongs to, or
// len(parts) for none.
func partOf(s *pprofile.Sample) int {
	for _, loc := range s.Location { // leaf first
		for _, line := range loc.Line { // inlined frames: the innermost first
			name := line.Function.Name
			for j, pt := range parts {
				for _, pat := range pt.patterns {
					if strings.Contains(name, pat) {
						return j
					}
				}
			}
		}
	}
	return len(parts)
}

// printProfileParts prints, from the warm runs' CPU profile, where the
// bench process's CPU went per gateway execution: the gateway's parts,
// and beside them the load generator and Go's runtime, which serve both
// sides' runs (the profile covers the bare side's runs too).
func (r *Report) printProfileParts(w io.Writer, path string, executions int) {
	if path == "" || executions == 0 {
		return
	}
	got, total, err := profileParts(path)
	if err != nil {
		fmt.Fprintf(w, "\n(the warm profile %s could not be read: %v)\n", path, err)
		return
	}
	per := func(ns float64) float64 { return ns / 1000 / float64(executions) }
	fmt.Fprintf(w, "\nWhere the bench process's CPU went in the warm runs (%s), µs per gateway execution (%d of them;\n", path, executions)
	fmt.Fprintln(w, "  the load generator and Go's runtime also served the bare side's runs):")
	for i, pt := range parts {
		fmt.Fprintf(w, "  %-78s %7.1f\n", pt.name, per(got[i]))
	}
	fmt.Fprintf(w, "  %-78s %7.1f\n", "other", per(got[len(parts)]))
	fmt.Fprintf(w, "  %-78s %7.1f\n", "all", per(total))
}
