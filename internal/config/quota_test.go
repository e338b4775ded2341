package config_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/config"
)

func TestQuotas(t *testing.T) {
	t.Parallel()
	keys := map[string]string{"GATEWAY_AUTH_KEYS": "ci=sha256:" + strings.Repeat("0", 64)}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{"GATEWAY_RUNTIME_PROCESSES": "2", "GATEWAY_RUNTIME_MAX_CONCURRENCY": "16", "GATEWAY_RUNTIME_QUEUE_SIZE": "64"}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name                  string
		env                   map[string]string
		requests, concurrency int
	}{
		{"no keys: none", with(nil), 0, 0},
		{"no keys, set: as set", with(map[string]string{"GATEWAY_QUOTA_REQUESTS": "100", "GATEWAY_QUOTA_CONCURRENCY": "3"}), 100, 3},
		{"keys: the pool's capacity, per second of the window", with(keys), 96 * 60, 96},
		{"keys, 10s window", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_QUOTA_WINDOW": "10s"}), 960, 96},
		{"keys, no queue", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_RUNTIME_QUEUE_SIZE": "-1"}), 32 * 60, 32},
		{"keys, queue derived", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_RUNTIME_QUEUE_SIZE": "0"}), 64 * 60, 64},
		{"keys, concurrency set", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_QUOTA_CONCURRENCY": "5"}), 300, 5},
		{"keys, both set", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_QUOTA_CONCURRENCY": "5", "GATEWAY_QUOTA_REQUESTS": "7"}), 7, 5},
		{"keys, one process per CPU, 1,000 at once each", map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_RUNTIME_MAX_CONCURRENCY": "1000"}, 2 * runtime.NumCPU() * 1000 * 60, 2 * runtime.NumCPU() * 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := load(t, nil, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			q := cfg.Quotas()
			if q.Requests != tt.requests || q.Concurrency != tt.concurrency {
				t.Errorf("Quotas() = %d requests, %d concurrency; want %d, %d", q.Requests, q.Concurrency, tt.requests, tt.concurrency)
			}
		})
	}
}

func TestDeliveryLimitsValidated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string // the key the error names; "" for valid
	}{
		{map[string]string{"GATEWAY_QUOTA_REQUESTS": "-1"}, "quota.requests"},
		{map[string]string{"GATEWAY_QUOTA_CONCURRENCY": "-1"}, "quota.concurrency"},
		{map[string]string{"GATEWAY_HTTP_WRITE_TIMEOUT": "0s"}, "http.write_timeout"},
		{map[string]string{"GATEWAY_HTTP_CLIENT_BUFFER_BYTES": "-5"}, "http.client_buffer_bytes"},
		{map[string]string{"GATEWAY_HTTP_MAX_REQUEST_LIFETIME": "30s"}, "http.max_request_lifetime"}, // max_timeout is 60s
		{map[string]string{"GATEWAY_HTTP_MAX_REQUEST_LIFETIME": "-1s"}, "http.max_request_lifetime"},
		{map[string]string{"GATEWAY_HTTP_MAX_REQUEST_LIFETIME": "2m", "GATEWAY_HTTP_CLIENT_BUFFER_BYTES": "65536"}, ""},
	}
	for _, tt := range tests {
		_, err := load(t, nil, tt.env)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Load(%v) = %v, want nil", tt.env, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want+":")):
			t.Errorf("Load(%v) = %v, want an error naming %s", tt.env, err, tt.want)
		}
	}
}

func TestMaxQueuedPerKey(t *testing.T) {
	t.Parallel()
	keys := "ci=sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name string
		env  map[string]string
		want int
	}{
		{"no keys: the whole queue", map[string]string{"GATEWAY_STORAGE_MAX_QUEUED": "100"}, 100},
		{"keys: a quarter of the queue", map[string]string{"GATEWAY_AUTH_KEYS": keys, "GATEWAY_STORAGE_MAX_QUEUED": "100"}, 25},
		{"keys, tiny queue: at least 1", map[string]string{"GATEWAY_AUTH_KEYS": keys, "GATEWAY_STORAGE_MAX_QUEUED": "2"}, 1},
		{"set: as set", map[string]string{"GATEWAY_AUTH_KEYS": keys, "GATEWAY_STORAGE_MAX_QUEUED_PER_KEY": "7"}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := load(t, nil, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.MaxQueuedPerKey(); got != tt.want {
				t.Errorf("MaxQueuedPerKey() = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestKeyMaxQueued reads a key's own max_queued from a file, and refuses a
// negative one.
func TestKeyMaxQueued(t *testing.T) {
	t.Parallel()
	hash := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		n       string
		want    int
		wantErr bool
	}{{"3", 3, false}, {"0", 0, false}, {"-1", 0, true}} {
		yaml := "auth:\n  keys:\n    ci:\n      hash: " + hash + "\n      max_queued: " + tt.n + "\n"
		file := filepath.Join(t.TempDir(), "gateway.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := load(t, []string{"--config", file}, nil)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), "max_queued") {
				t.Errorf("max_queued %s: Load = %v, want an error naming max_queued", tt.n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("max_queued %s: Load = %v", tt.n, err)
		}
		if keys := cfg.Keys(); len(keys) != 1 || keys[0].MaxQueued != tt.want {
			t.Errorf("max_queued %s: Keys() = %+v, want MaxQueued %d", tt.n, keys, tt.want)
		}
	}
}

// TestRuntimeDerived: the runtime's defaults follow the machine, and a
// value set wins.
func TestRuntimeDerived(t *testing.T) {
	t.Parallel()
	const gib = int64(1) << 30
	tests := []struct {
		name       string
		runtime    config.RuntimeConfig
		machine    config.Machine
		memoryMB   int
		concurrent int
		queue      int
	}{
		// Two CPUs, 24 GiB, 20,000 files: half the memory over 3 processes,
		// a quarter of the files per process, a queue as large as the pool.
		{"2 CPUs, 24 GiB", config.RuntimeConfig{}, config.Machine{CPUs: 2, MemoryBytes: 24 * gib, OpenFiles: 20000}, 4096, 2500, 5000},
		{"a 2 GiB container", config.RuntimeConfig{}, config.Machine{CPUs: 2, MemoryBytes: 2 * gib, OpenFiles: 20000}, 341, 2500, 5000},
		{"tiny", config.RuntimeConfig{}, config.Machine{CPUs: 4, MemoryBytes: gib, OpenFiles: 256}, 256, 64, 256},
		{"many files", config.RuntimeConfig{}, config.Machine{CPUs: 1, MemoryBytes: 64 * gib, OpenFiles: 1 << 20}, 16384, 4096, 4096},
		{"processes set", config.RuntimeConfig{Processes: 5}, config.Machine{CPUs: 2, MemoryBytes: 24 * gib, OpenFiles: 20000}, 2048, 1000, 5000},
		{"all set", config.RuntimeConfig{MemoryLimitMB: 700, MaxConcurrency: 30, QueueSize: 7}, config.Machine{CPUs: 2, MemoryBytes: 24 * gib, OpenFiles: 20000}, 700, 30, 7},
		{"no queue", config.RuntimeConfig{QueueSize: -1}, config.Machine{CPUs: 2, MemoryBytes: 24 * gib, OpenFiles: 20000}, 4096, 2500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &config.Config{Runtime: tt.runtime, Machine: tt.machine}
			if got := c.MemoryLimitMB(); got != tt.memoryMB {
				t.Errorf("MemoryLimitMB() = %d, want %d", got, tt.memoryMB)
			}
			if got := c.MaxConcurrency(); got != tt.concurrent {
				t.Errorf("MaxConcurrency() = %d, want %d", got, tt.concurrent)
			}
			if got := c.QueueSize(); got != tt.queue {
				t.Errorf("QueueSize() = %d, want %d", got, tt.queue)
			}
			if got, want := c.PoolCapacity(), c.Processes()*tt.concurrent+tt.queue; got != want {
				t.Errorf("PoolCapacity() = %d, want %d", got, want)
			}
		})
	}
}
