package config_test

import (
	"slices"
	"strings"
	"testing"
)

// cloudflareEnv is the environment of a gateway on the cloudflare backend,
// with extra settings.
func cloudflareEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"GATEWAY_BACKEND":                "cloudflare",
		"GATEWAY_CLOUDFLARE_URL":         "https://shim.example.com",
		"GATEWAY_CLOUDFLARE_SHIM_SECRET": strings.Repeat("s", 32),
		"GATEWAY_AUTH_DISABLED":          "true",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestCloudflareDefaults: on the cloudflare backend execution.cpu_ms not
// set is Cloudflare's 30 s (jobs carry it, /readyz shows it) and memory is
// its 128 MB; a cpu_ms given, even 0, is kept; locally nothing changes.
func TestCloudflareDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, cloudflareEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if mem, cpu := cfg.Limits(); mem != 128 || cpu != 30_000 || cfg.Execution.CPUMs != 30_000 || cfg.Effective["execution.cpu_ms"] != "30000" {
		t.Errorf("Limits() = %d MB, %d ms (cpu_ms %d, shown %s); want 128 and 30000", mem, cpu, cfg.Execution.CPUMs, cfg.Effective["execution.cpu_ms"])
	}
	cfg, err = load(t, nil, cloudflareEnv(map[string]string{"GATEWAY_EXECUTION_CPU_MS": "50"}))
	if err != nil || cfg.Execution.CPUMs != 50 {
		t.Errorf("cpu_ms 50 on cloudflare = %v, %v; want 50", cfg.Execution.CPUMs, err)
	}
	cfg, err = load(t, nil, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if mem, cpu := cfg.Limits(); cpu != 0 || mem != cfg.Runtime.V8HeapMB {
		t.Errorf("local Limits() = %d MB, %d ms; want v8_heap_mb and 0", mem, cpu)
	}
}

// TestBackendWarnings: every runtime.* setting given (by environment or
// flag) is named at start on the cloudflare backend, with why; none left
// at its default, and none on the local backend.
func TestBackendWarnings(t *testing.T) {
	t.Parallel()
	given := map[string]string{
		"GATEWAY_RUNTIME_PROCESSES":       "3",
		"GATEWAY_RUNTIME_V8_HEAP_MB":      "256",
		"GATEWAY_RUNTIME_MEMORY_LIMIT_MB": "2048",
		"GATEWAY_RUNTIME_SPARE":           "false",
	}
	cfg, err := load(t, nil, cloudflareEnv(given))
	if err != nil {
		t.Fatal(err)
	}
	warnings := cfg.BackendWarnings()
	if len(warnings) != len(given) {
		t.Errorf("BackendWarnings() = %q, want one per runtime setting given (%d)", warnings, len(given))
	}
	for _, key := range []string{"runtime.processes", "runtime.v8_heap_mb", "runtime.memory_limit_mb", "runtime.spare"} {
		found := false
		for _, w := range warnings {
			found = found || strings.HasPrefix(w, key+" is set but does nothing on the cloudflare backend")
		}
		if !found {
			t.Errorf("BackendWarnings() = %q, want %s named", warnings, key)
		}
	}
	for _, w := range warnings {
		if strings.Contains(w, "memory") && !strings.Contains(w, "128 MB") {
			t.Errorf("warning %q does not give Cloudflare's memory bound", w)
		}
	}
	if cfg, err := load(t, nil, cloudflareEnv(nil)); err != nil || len(cfg.BackendWarnings()) != 0 {
		t.Errorf("defaults only: BackendWarnings() = %q, %v; want none", cfg.BackendWarnings(), err)
	}
	if cfg, err := load(t, nil, map[string]string{"GATEWAY_RUNTIME_PROCESSES": "3"}); err != nil || len(cfg.BackendWarnings()) != 0 {
		t.Errorf("local: BackendWarnings() = %q, %v; want none", cfg.BackendWarnings(), err)
	}
}

// TestCloudflarePrivateExample loads docs/examples/cloudflare-private.yaml,
// the worked example of docs/cloudflare.md: billing carries the Access
// service token's headers from the environment, every value masked, none
// shown in the effective configuration; ledger is reached through its
// Workers VPC service, billing not.
func TestCloudflarePrivateExample(t *testing.T) {
	t.Parallel()
	env := cloudflareEnv(map[string]string{
		"BILLING_ACCESS_CLIENT_ID": "id-123.access", "BILLING_ACCESS_CLIENT_SECRET": "access-secret-456", "BILLING_TOKEN": "bill-789",
		"LEDGER_TOKEN": "ledger-012",
	})
	delete(env, "GATEWAY_CLOUDFLARE_URL")
	delete(env, "GATEWAY_AUTH_DISABLED")
	cfg, err := load(t, []string{"--config", "../../docs/examples/cloudflare-private.yaml"}, env)
	if err != nil {
		t.Fatal(err)
	}
	billing := cfg.CapabilitySet()["billing"]
	want := map[string]string{"cf-access-client-id": "id-123.access", "cf-access-client-secret": "access-secret-456", "authorization": "Bearer bill-789"}
	for h, v := range want {
		if billing.Headers[h] != v || !slices.Contains(billing.Secrets, v) {
			t.Errorf("header %s = %q (masked: %v), want %q, masked", h, billing.Headers[h], slices.Contains(billing.Secrets, v), v)
		}
	}
	if ledger := cfg.CapabilitySet()["ledger"]; !ledger.VPC || billing.VPC || cfg.Capabilities["ledger"].Cloudflare.VPCServiceID == "" {
		t.Errorf("VPC: ledger %v, billing %v; want ledger only reached through its VPC service", ledger.VPC, billing.VPC)
	}
	for _, shown := range cfg.Effective {
		if strings.Contains(shown, "access-secret-456") || strings.Contains(shown, "bill-789") || strings.Contains(shown, "ledger-012") {
			t.Errorf("the effective configuration shows a credential: %q", shown)
		}
	}
}
