package config

import (
	"fmt"
	"slices"
	"strings"
)

// Cloudflare's limits on a Dynamic Worker, which the cloudflare backend
// runs under.
const (
	// CloudflareMemoryMB is the memory one isolate may use on Cloudflare; it
	// cannot be set. A guest that runs locally under a larger
	// runtime.v8_heap_mb can fail there.
	CloudflareMemoryMB = 128
	// CloudflareCPUMs is the billed CPU time an execution may use on
	// Cloudflare when execution.cpu_ms does not say: the platform's
	// default of 30 s, applied as execution.cpu_ms's default there.
	CloudflareCPUMs = 30_000
)

// applyBackendDefaults sets the defaults that depend on the backend: on
// Cloudflare, execution.cpu_ms not given is the platform's 30 s, made
// explicit so every job carries it and /readyz shows it.
func (c *Config) applyBackendDefaults() {
	if c.Backend == "cloudflare" && !c.Given["execution.cpu_ms"] && c.Execution.CPUMs == 0 {
		c.Execution.CPUMs = CloudflareCPUMs
	}
}

// BackendWarnings are the settings given that do nothing on the configured
// backend, each with why, for the log at start: the runtime.* settings
// (processes, memory bounds, quarantine's processes, spares, reuse keys per
// process) on the cloudflare backend, where Cloudflare runs the isolates.
func (c *Config) BackendWarnings() []string {
	if c.Backend != "cloudflare" {
		return nil
	}
	var out []string
	for _, s := range Settings {
		if !strings.HasPrefix(s.Key, "runtime.") || !c.Given[s.Key] {
			continue
		}
		why := "Cloudflare runs the isolates, not a local pool of workerd processes"
		switch s.Key {
		case "runtime.v8_heap_mb", "runtime.memory_limit_mb", "runtime.recycle_rss_mb":
			why = fmt.Sprintf("Cloudflare bounds each isolate to %d MB, whatever is set here", CloudflareMemoryMB)
		case "runtime.reuse_keys":
			why = "the gateway leases reused isolates per reuse key on Cloudflare, with no bound per process"
		}
		out = append(out, fmt.Sprintf("%s is set but does nothing on the cloudflare backend: %s", s.Key, why))
	}
	slices.Sort(out)
	return out
}

// Limits are what an isolate may use on the configured backend, as
// /readyz shows them: memory in MB (Cloudflare's fixed bound, or the local
// runtime.v8_heap_mb; 0: V8's default) and the default CPU per execution
// in ms (0: none enforced).
func (c *Config) Limits() (memoryMB, cpuMs int) {
	if c.Backend == "cloudflare" {
		return CloudflareMemoryMB, c.Execution.CPUMs
	}
	return c.Runtime.V8HeapMB, c.Execution.CPUMs
}
