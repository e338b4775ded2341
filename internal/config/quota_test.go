package config_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
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
		{"keys, no queue", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_RUNTIME_QUEUE_SIZE": "0"}), 32 * 60, 32},
		{"keys, concurrency set", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_QUOTA_CONCURRENCY": "5"}), 300, 5},
		{"keys, both set", with(map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"], "GATEWAY_QUOTA_CONCURRENCY": "5", "GATEWAY_QUOTA_REQUESTS": "7"}), 7, 5},
		{"keys, one process per CPU", map[string]string{"GATEWAY_AUTH_KEYS": keys["GATEWAY_AUTH_KEYS"]}, (runtime.NumCPU()*16 + 64) * 60, runtime.NumCPU()*16 + 64},
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
