package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validateCase is one value of one setting, given as its environment
// variable, with what Load must make of it: ok, or one problem naming want.
type validateCase struct {
	name  string
	env   map[string]string
	yaml  string // a config file, when the value cannot be given by env
	ok    bool
	want  string // the key the one problem names, when !ok
	wants string // a part of its message, when !ok
}

const (
	goodHash = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	secret32 = "abcdefghijklmnopqrstuvwxyz012345"
)

// one is a case setting only env var name to val.
func one(name, val string, ok bool, want, wants string) validateCase {
	return validateCase{name: name + "=" + val, env: map[string]string{name: val}, ok: ok, want: want, wants: wants}
}

// validateCases pins, for every check Validate makes, a value it accepts and
// one it refuses (at the boundary where there is one), and the key and
// meaning of the refusal.
func validateCases(workerd string) []validateCase {
	const pos, nonneg = "must be positive", "must not be negative"
	cases := []validateCase{
		one("GATEWAY_LISTEN", "127.0.0.1:1", true, "", ""),
		one("GATEWAY_LISTEN", "nowhere", false, "listen", "is not host:port"),
		one("GATEWAY_LISTEN", "0.0.0.0:8080", false, "listen", "no API keys are configured"),
		{name: "listen public with auth.disabled", env: map[string]string{"GATEWAY_LISTEN": "0.0.0.0:8080", "GATEWAY_AUTH_DISABLED": "true"}, ok: true},
		{name: "listen public with a key", env: map[string]string{"GATEWAY_LISTEN": "0.0.0.0:8080", "GATEWAY_AUTH_KEYS": "ci=" + goodHash}, ok: true},
		one("GATEWAY_LOG_LEVEL", "debug", true, "", ""),
		one("GATEWAY_LOG_LEVEL", "error", true, "", ""),
		one("GATEWAY_LOG_LEVEL", "DEBUG", false, "log.level", "is not one of debug, info, warn, error"),
		one("GATEWAY_LOG_LEVEL", "trace", false, "log.level", "is not one of debug, info, warn, error"),
		one("GATEWAY_HTTP_MAX_HEADER_BYTES", "4096", true, "", ""),
		one("GATEWAY_HTTP_MAX_HEADER_BYTES", "4095", false, "http.max_header_bytes", "must be at least 4096"),
		one("GATEWAY_HTTP_CLIENT_BUFFER_BYTES", "0", true, "", ""),
		one("GATEWAY_HTTP_CLIENT_BUFFER_BYTES", "-1", false, "http.client_buffer_bytes", "must not be negative (0: derived)"),
		one("GATEWAY_HTTP_MAX_REQUEST_LIFETIME", "0s", true, "", ""),
		one("GATEWAY_HTTP_MAX_REQUEST_LIFETIME", "61s", true, "", ""),
		one("GATEWAY_HTTP_MAX_REQUEST_LIFETIME", "60s", false, "http.max_request_lifetime", "longer than execution.max_timeout"),
		one("GATEWAY_HTTP_MAX_REQUEST_LIFETIME", "-1s", false, "http.max_request_lifetime", "longer than execution.max_timeout"),
		one("GATEWAY_QUOTA_REQUESTS", "0", true, "", ""),
		one("GATEWAY_QUOTA_REQUESTS", "-1", false, "quota.requests", "must not be negative (0: derived)"),
		one("GATEWAY_QUOTA_CONCURRENCY", "0", true, "", ""),
		one("GATEWAY_QUOTA_CONCURRENCY", "-1", false, "quota.concurrency", "must not be negative (0: derived)"),
		one("GATEWAY_AUTH_KEYS", "ci="+goodHash, true, "", ""),
		one("GATEWAY_AUTH_KEYS", "Bad Name="+goodHash, false, "auth.keys", "name"),
		one("GATEWAY_AUTH_KEYS", "ci=md5:abc", false, "auth.keys.ci.hash", "sha256"),
		{name: "auth.keys overrides", yaml: "auth:\n  keys:\n    ci:\n      hash: " + goodHash + "\n      requests: 0\n      concurrency: 3\n", ok: true},
		{name: "auth.keys negative requests", yaml: "auth:\n  keys:\n    ci:\n      hash: " + goodHash + "\n      requests: -1\n", want: "auth.keys.ci", wants: "must not be negative"},
		{name: "auth.keys negative concurrency", yaml: "auth:\n  keys:\n    ci:\n      hash: " + goodHash + "\n      concurrency: -1\n", want: "auth.keys.ci", wants: "must not be negative"},
		one("GATEWAY_BACKEND", "local", true, "", ""),
		one("GATEWAY_BACKEND", "mars", false, "backend", "mars"),
		one("GATEWAY_BACKEND", "Local", false, "backend", "Local"),
		{name: "backend cloudflare", env: map[string]string{"GATEWAY_BACKEND": "cloudflare", "GATEWAY_CLOUDFLARE_URL": "https://x.workers.dev", "GATEWAY_CLOUDFLARE_SHIM_SECRET": secret32}, ok: true},
		{name: "cloudflare.url bad", env: map[string]string{"GATEWAY_BACKEND": "cloudflare", "GATEWAY_CLOUDFLARE_URL": "http://example.com", "GATEWAY_CLOUDFLARE_SHIM_SECRET": secret32}, want: "cloudflare.url", wants: "https://"},
		{name: "cloudflare.url unchecked with local", env: map[string]string{"GATEWAY_CLOUDFLARE_URL": "ftp://x"}, ok: true},
		{name: "cloudflare.shim_secret short", env: map[string]string{"GATEWAY_BACKEND": "cloudflare", "GATEWAY_CLOUDFLARE_URL": "https://x.workers.dev", "GATEWAY_CLOUDFLARE_SHIM_SECRET": secret32[1:]}, want: "cloudflare.shim_secret", wants: "at least 32 characters"},
		{name: "cloudflare.shim_secret unchecked with local", env: map[string]string{"GATEWAY_CLOUDFLARE_SHIM_SECRET": "short"}, ok: true},
		one("GATEWAY_RUNTIME_WORKERD", workerd, true, "", ""),
		one("GATEWAY_RUNTIME_WORKERD", workerd+".missing", false, "runtime.workerd", "no such file"),
		one("GATEWAY_RUNTIME_MAX_CONCURRENCY", "1", true, "", ""),
		one("GATEWAY_RUNTIME_MAX_STARTING", "1", true, "", ""),
		one("GATEWAY_RUNTIME_MAX_STARTING", "0", false, "runtime.max_starting", "must be at least 1"),
		one("GATEWAY_RUNTIME_QUEUE_SIZE", "-1", true, "", ""),
		one("GATEWAY_RUNTIME_QUEUE_SIZE", "-2", false, "runtime.queue_size", "must be at least -1"),
		one("GATEWAY_RUNTIME_REUSE_KEYS", "1", true, "", ""),
		one("GATEWAY_RUNTIME_REUSE_KEYS", "0", false, "runtime.reuse_keys", "must be at least 1"),
		one("GATEWAY_RUNTIME_MEMORY_LIMIT_MB", "0", true, "", ""),
		one("GATEWAY_RUNTIME_MEMORY_LIMIT_MB", "128", true, "", ""),
		one("GATEWAY_RUNTIME_MEMORY_LIMIT_MB", "127", false, "runtime.memory_limit_mb", "must be 0 or at least 128"),
		one("GATEWAY_RUNTIME_MEMORY_LIMIT_MB", "-1", false, "runtime.memory_limit_mb", "must be 0 or at least 128"),
		one("GATEWAY_RUNTIME_V8_HEAP_MB", "0", true, "", ""),
		one("GATEWAY_RUNTIME_V8_HEAP_MB", "64", true, "", ""),
		one("GATEWAY_RUNTIME_V8_HEAP_MB", "63", false, "runtime.v8_heap_mb", "must be 0 or at least 64"),
		one("GATEWAY_EXECUTION_COMPATIBILITY_DATE", "2024-02-29", true, "", ""),
		one("GATEWAY_EXECUTION_COMPATIBILITY_DATE", "2024-13-40", false, "execution.compatibility_date", "is not a date (YYYY-MM-DD)"),
		one("GATEWAY_EXECUTION_COMPATIBILITY_DATE", "2023-02-29", false, "execution.compatibility_date", "is not a date (YYYY-MM-DD)"),
		one("GATEWAY_EXECUTION_COMPATIBILITY_DATE", "2024-2-1", false, "execution.compatibility_date", "is not a date (YYYY-MM-DD)"),
		one("GATEWAY_EXECUTION_MAX_TIMEOUT", "10s", true, "", ""),
		one("GATEWAY_EXECUTION_MAX_TIMEOUT", "9s", false, "execution.max_timeout", "less than execution.default_timeout"),
		one("GATEWAY_EXECUTION_MAX_LOG_LINE_BYTES", "64", true, "", ""),
		one("GATEWAY_EXECUTION_MAX_LOG_LINE_BYTES", "63", false, "execution.max_log_line_bytes", "must be at least 64"),
		one("GATEWAY_EXECUTION_MAX_LOG_BYTES", "65536", true, "", ""),
		one("GATEWAY_EXECUTION_MAX_LOG_BYTES", "65535", false, "execution.max_log_bytes", "at least execution.max_log_line_bytes"),
		one("GATEWAY_PACKAGES_CACHE_MAX_BYTES", "0", false, "packages.cache_max_bytes", "must be positive"),
		one("GATEWAY_PACKAGES_CACHE_MAX_BYTES", "-1", false, "packages.cache_max_bytes", "must be positive"),
		one("GATEWAY_PACKAGES_CACHE_MAX_BYTES", "104857599", false, "packages.cache_max_bytes", "less than packages.max_bytes"),
		one("GATEWAY_PACKAGES_CACHE_MAX_BYTES", "104857600", true, "", ""),
		one("GATEWAY_EXECUTION_MAX_MODULES", "1", true, "", ""),
		one("GATEWAY_EXECUTION_MAX_MODULES", "0", false, "execution.max_modules", "must be at least 1"),
		one("GATEWAY_EXECUTION_MAX_ENV_BYTES", "2", true, "", ""),
		one("GATEWAY_EXECUTION_MAX_ENV_BYTES", "1", false, "execution.max_env_bytes", ""),
	}
	// Durations and sizes that must be positive: the smallest one passes, 0 fails.
	for env, small := range map[string]string{
		"GATEWAY_HTTP_READ_HEADER_TIMEOUT": "1ns", "GATEWAY_HTTP_READ_TIMEOUT": "1ns",
		"GATEWAY_HTTP_IDLE_TIMEOUT": "1ns", "GATEWAY_HTTP_WRITE_TIMEOUT": "1ns", "GATEWAY_QUOTA_WINDOW": "1ns",
		"GATEWAY_RUNTIME_START_TIMEOUT": "1ns", "GATEWAY_RUNTIME_QUEUE_TIMEOUT": "1ns",
		"GATEWAY_RUNTIME_PROBE_INTERVAL": "1ns", "GATEWAY_RUNTIME_DRAIN_TIMEOUT": "1ns",
		"GATEWAY_EXECUTION_DEFAULT_TIMEOUT": "1ns", "GATEWAY_HTTP_MAX_REQUEST_BYTES": "1",
		"GATEWAY_EXECUTION_MAX_RESPONSE_BYTES": "1", "GATEWAY_EXECUTION_MAX_CODE_BYTES": "1",
	} {
		zero := "0"
		if strings.HasSuffix(small, "ns") {
			zero = "0s"
		}
		cases = append(cases, one(env, small, true, "", ""), one(env, zero, false, keyOf(env), pos))
	}
	// Durations and counts where 0 means off or derived: 0 passes, -1 fails.
	for env, zero := range map[string]string{
		"GATEWAY_HTTP_SHUTDOWN_GRACE": "0s", "GATEWAY_HTTP_SSE_HEARTBEAT": "0s",
		"GATEWAY_RUNTIME_UNRESPONSIVE_KILL": "0s", "GATEWAY_RUNTIME_PROCESSES": "0",
		"GATEWAY_RUNTIME_MAX_CONCURRENCY": "0", "GATEWAY_RUNTIME_RECYCLE_AFTER": "0",
		"GATEWAY_RUNTIME_RECYCLE_RSS_MB": "0", "GATEWAY_EXECUTION_CPU_MS": "0",
		"GATEWAY_EXECUTION_SUB_REQUESTS": "0",
	} {
		neg := "-1"
		if strings.HasSuffix(zero, "s") {
			neg = "-1s"
		}
		cases = append(cases, one(env, zero, true, "", ""), one(env, neg, false, keyOf(env), nonneg))
	}
	return cases
}

// keyOf turns GATEWAY_RUNTIME_QUEUE_SIZE into runtime.queue_size: the
// first underscore after the section is the dot.
func keyOf(env string) string {
	section, rest, _ := strings.Cut(strings.TrimPrefix(env, "GATEWAY_"), "_")
	return strings.ToLower(section + "." + rest)
}

// TestValidateEachCheck runs every case through Load: an accepted value
// loads; a refused one fails with exactly one problem, naming its key.
func TestValidateEachCheck(t *testing.T) {
	t.Parallel()
	workerd := filepath.Join(t.TempDir(), "workerd")
	if err := os.WriteFile(workerd, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range validateCases(workerd) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			if tt.yaml != "" {
				file := filepath.Join(t.TempDir(), "gateway.yaml")
				if err := os.WriteFile(file, []byte("listen: 0.0.0.0:1\n"+tt.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				args = []string{"--config", file}
			}
			_, err := load(t, args, tt.env)
			if tt.ok {
				if err != nil {
					t.Fatalf("Load(%v) = %v, want ok", tt.env, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load(%v) succeeded, want a problem with %s", tt.env, tt.want)
			}
			problems := strings.Split(strings.TrimPrefix(err.Error(), "invalid configuration: "), "\n")
			if len(problems) != 1 || !strings.HasPrefix(problems[0], tt.want+": ") || !strings.Contains(problems[0], tt.wants) {
				t.Errorf("Load(%v) = %q, want one problem %q naming %q", tt.env, err, tt.want+": …", tt.wants)
			}
		})
	}
}

// TestEveryProblemOfAKeyIsNamed: one API key with a bad name and a bad
// hash is two problems, each naming the part it is in.
func TestEveryProblemOfAKeyIsNamed(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, map[string]string{"GATEWAY_AUTH_KEYS": "Bad Name=md5:x,ok=md5:y"})
	if err == nil {
		t.Fatal("Load succeeded, want three problems")
	}
	problems := strings.Split(strings.TrimPrefix(err.Error(), "invalid configuration: "), "\n")
	want := []string{"auth.keys: ", "auth.keys.Bad Name.hash: ", "auth.keys.ok.hash: "}
	if len(problems) != len(want) {
		t.Fatalf("Load = %q, want %d problems", err, len(want))
	}
	for i, p := range problems {
		if !strings.HasPrefix(p, want[i]) {
			t.Errorf("problem %d = %q, want it to start %q", i, p, want[i])
		}
	}
}
