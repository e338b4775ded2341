package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCallbacks reads the callbacks section and the per-key callback
// secrets from a file: a key's own secret wins over callbacks.secret, and
// neither ever shows in the effective configuration or its JSON.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	hash := "sha256:" + strings.Repeat("ab", 32)
	yaml := "callbacks:\n  secret: global-secret-0123456789\n  allow_private: true\n  timeout: 3s\n  max_retry_time: 2m\n" +
		"auth:\n  keys:\n    ci:\n      hash: " + hash + "\n      callback_secret: ci-own-secret-0123456789\n    other:\n      hash: " + hash + "\n"
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Callbacks
	if !c.AllowPrivate || c.Timeout != 3*time.Second || c.MaxRetryTime != 2*time.Minute {
		t.Errorf("Callbacks = %+v, want allow_private, 3s, 2m", c)
	}
	for name, want := range map[string]string{"ci": "ci-own-secret-0123456789", "other": "global-secret-0123456789", "anonymous": "global-secret-0123456789"} {
		if got := string(cfg.CallbackSecret(name)); got != want {
			t.Errorf("CallbackSecret(%s) = %q, want %q", name, got, want)
		}
	}
	shown, _ := json.Marshal(cfg)
	for key, val := range cfg.Effective {
		if strings.Contains(val, "secret-0123") {
			t.Errorf("Effective[%s] = %q shows a callback secret", key, val)
		}
	}
	if strings.Contains(string(shown), "secret-0123") || cfg.Effective["callbacks.secret"] != "[REDACTED]" {
		t.Errorf("config JSON %s / Effective[callbacks.secret] %q show a callback secret", shown, cfg.Effective["callbacks.secret"])
	}
}

// TestCallbacksDefaults: no secret (callbackUrl refused), public receivers
// only, 10s per attempt, 10m per delivery.
func TestCallbacksDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Callbacks; c.Secret != "" || c.AllowPrivate || c.Timeout != 10*time.Second || c.MaxRetryTime != 10*time.Minute {
		t.Errorf("Callbacks = %+v, want no secret, private refused, 10s, 10m", c)
	}
	if s := cfg.CallbackSecret("anonymous"); s != nil {
		t.Errorf("CallbackSecret = %q, want nil", s)
	}
}

// TestCallbacksRefused: short secrets, global or per key, and durations
// that are not positive stop the start.
func TestCallbacksRefused(t *testing.T) {
	t.Parallel()
	hash := "sha256:" + strings.Repeat("ab", 32)
	for _, yaml := range []string{
		"callbacks:\n  secret: short\n",
		"callbacks:\n  timeout: 0s\n",
		"callbacks:\n  max_retry_time: -1m\n",
		"auth:\n  keys:\n    ci:\n      hash: " + hash + "\n      callback_secret: short\n",
	} {
		file := filepath.Join(t.TempDir(), "gateway.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := load(t, []string{"--config", file}, nil); err == nil || strings.Contains(err.Error(), "short") {
			t.Errorf("Load(%q) = %v, want an error that does not echo the secret", yaml, err)
		}
	}
}
