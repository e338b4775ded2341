package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/dynamic-workers/gateway/internal/config"
)

func load(t *testing.T, args []string, env map[string]string) (*config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.Flags(fs)
	return config.Load(fs, args, func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Backend != "local" || cfg.Execution.DefaultTimeout != 10*time.Second {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	err := os.WriteFile(file, []byte("listen: 127.0.0.1:7001\nlog:\n  level: warn\nexecution:\n  default_timeout: 3s\n  max_timeout: 20s\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		listen     string
		level      string
		defTimeout time.Duration
	}{
		{"file", []string{"--config", file}, nil, "127.0.0.1:7001", "warn", 3 * time.Second},
		{"file from env", nil, map[string]string{"GATEWAY_CONFIG": file}, "127.0.0.1:7001", "warn", 3 * time.Second},
		{"env over file", []string{"--config", file}, map[string]string{"GATEWAY_LISTEN": "127.0.0.1:7002", "GATEWAY_EXECUTION_DEFAULT_TIMEOUT": "4s"}, "127.0.0.1:7002", "warn", 4 * time.Second},
		{"flag over env", []string{"--config", file, "--listen", "127.0.0.1:7003", "--log-level", "debug"}, map[string]string{"GATEWAY_LISTEN": "127.0.0.1:7002"}, "127.0.0.1:7003", "debug", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != tt.listen || cfg.Log.Level != tt.level || cfg.Execution.DefaultTimeout != tt.defTimeout {
				t.Errorf("listen, level, timeout = %s, %s, %v, want %s, %s, %v", cfg.Listen, cfg.Log.Level, cfg.Execution.DefaultTimeout, tt.listen, tt.level, tt.defTimeout)
			}
		})
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := load(t, []string{"--listen", "nowhere", "--backend", "mars"}, map[string]string{
		"GATEWAY_LOG_LEVEL":                    "loud",
		"GATEWAY_EXECUTION_COMPATIBILITY_DATE": "2024-13-40",
		"GATEWAY_EXECUTION_MAX_TIMEOUT":        "1s",
		"GATEWAY_RUNTIME_WORKERD":              "/no/such/workerd",
	})
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, want := range []string{"listen", "backend", "log.level", "execution.compatibility_date", "execution.max_timeout", "runtime.workerd"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestUnknownFileKey(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1\nlisten_addr: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := load(t, []string{"--config", file}, nil)
	if err == nil || !strings.Contains(err.Error(), "listen_addr") {
		t.Errorf("Load = %v, want it to reject the unknown key listen_addr", err)
	}
}

func TestBadDurationIsAnError(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, map[string]string{"GATEWAY_EXECUTION_DEFAULT_TIMEOUT": "soon"})
	if err == nil {
		t.Fatal("Load succeeded with a default timeout of \"soon\"")
	}
}

func TestAuthKeys(t *testing.T) {
	t.Parallel()
	const hash = "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := "listen: 0.0.0.0:8080\nauth:\n  keys:\n    ci:\n      hash: " + hash + "\n      requests: 5\n    old:\n      hash: " + hash + "\n      revoked: true\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := cfg.Keys()
	if len(keys) != 2 || keys[0].Name != "ci" || keys[0].Requests != 5 || keys[1].Name != "old" || !keys[1].Revoked {
		t.Errorf("keys from file = %+v", keys)
	}

	cfg, err = load(t, []string{"--listen", "0.0.0.0:1"}, map[string]string{"GATEWAY_AUTH_KEYS": "a=" + hash + ", b=" + hash})
	if err != nil {
		t.Fatal(err)
	}
	if keys := cfg.Keys(); len(keys) != 2 || keys[0].Name != "a" || keys[1].Name != "b" {
		t.Errorf("keys from env = %+v", keys)
	}
}

func TestSecureByDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		listen string
		env    map[string]string
		ok     bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"localhost:8080", nil, true},
		{"[::1]:8080", nil, true},
		{"0.0.0.0:8080", nil, false},
		{":8080", nil, false},
		{"10.1.2.3:8080", nil, false},
		{"0.0.0.0:8080", map[string]string{"GATEWAY_AUTH_DISABLED": "true"}, true},
		{"0.0.0.0:8080", map[string]string{"GATEWAY_AUTH_KEYS": "x=sha256:" + strings.Repeat("0", 64)}, true},
	}
	for _, tt := range tests {
		_, err := load(t, []string{"--listen", tt.listen}, tt.env)
		if (err == nil) != tt.ok {
			t.Errorf("listen %s, env %v: Load = %v, want ok %v", tt.listen, tt.env, err, tt.ok)
		}
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"nohash", "x=md5:abc", "Bad Name=sha256:" + strings.Repeat("0", 64)} {
		if _, err := load(t, nil, map[string]string{"GATEWAY_AUTH_KEYS": env}); err == nil {
			t.Errorf("GATEWAY_AUTH_KEYS=%q accepted", env)
		}
	}
}

func TestEffectiveRedactsSecrets(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, map[string]string{
		"GATEWAY_CLOUDFLARE_SHIM_SECRET": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t",
		"CLOUDFLARE_API_TOKEN":           "token-value",
		"GATEWAY_AUTH_KEYS":              "ci=sha256:" + strings.Repeat("a", 64),
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cloudflare.APIToken.Value() != "token-value" {
		t.Errorf("CLOUDFLARE_API_TOKEN did not set cloudflare.api_token")
	}
	for key, val := range cfg.Effective {
		if strings.Contains(val, "s3cr3t") || strings.Contains(val, "token-value") || strings.Contains(val, "aaaa") {
			t.Errorf("Effective[%s] = %q shows a secret", key, val)
		}
	}
	if cfg.Effective["auth.keys"] != "ci" || cfg.Effective["cloudflare.api_token"] != "[REDACTED]" || cfg.Effective["execution.default_timeout"] != "10s" {
		t.Errorf("Effective = %v", cfg.Effective)
	}
	if len(cfg.Effective) != len(config.Settings) {
		t.Errorf("Effective has %d settings, want all %d", len(cfg.Effective), len(config.Settings))
	}
}

// TestCloudflareURL: the gateway sends signed executions, secrets included,
// to cloudflare.url, so it must be https://; http:// only to loopback.
func TestCloudflareURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://dw-shim.team.workers.dev", true},
		{"https://x", true},
		{"HTTPS://shim.example.com/base", true},
		{"http://127.0.0.1:8787", true},
		{"http://127.9.9.9:1/", true},
		{"http://localhost", true},
		{"http://LOCALHOST:8787", true},
		{"http://[::1]:1", true},
		{"http://example.com", false},
		{"HTTP://example.com", false},
		{"Http://shim.example.com:80/", false},
		{"http://127.0.0.1.nip.io", false},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1@example.com/", false},
		{"http://10.0.0.1:8787", false},
		{"http://[::2]:1", false},
		{"http://2130706433/", false},
		{"ftp://example.com/", false},
		{"ws://127.0.0.1:8787", false},
		{"example.com", false},
		{"//example.com", false},
		{"127.0.0.1:8787", false},
		{"https://", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, nil, map[string]string{
				"GATEWAY_BACKEND":                "cloudflare",
				"GATEWAY_CLOUDFLARE_URL":         tt.url,
				"GATEWAY_CLOUDFLARE_SHIM_SECRET": strings.Repeat("s", 32),
			})
			if (err == nil) != tt.ok {
				t.Errorf("cloudflare.url %q: Load = %v, want ok %v", tt.url, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "cloudflare.url") {
				t.Errorf("cloudflare.url %q: error %q does not name cloudflare.url", tt.url, err)
			}
		})
	}
}

// TestUnknownKeyField: an API key in a file takes only KeyConfig's fields.
func TestUnknownKeyField(t *testing.T) {
	t.Parallel()
	hash := "sha256:" + strings.Repeat("0", 64)
	for field, ok := range map[string]bool{"revoked: true": true, "requests: 1": true, "concurrency: 1": true, "quota: 1": false, "Hash2: x": false} {
		file := filepath.Join(t.TempDir(), "gateway.yaml")
		yaml := "auth:\n  keys:\n    ci:\n      hash: " + hash + "\n      " + field + "\n"
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := load(t, []string{"--config", file}, nil); (err == nil) != ok {
			t.Errorf("key field %q: Load = %v, want ok %v", field, err, ok)
		}
	}
}
