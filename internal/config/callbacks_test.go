package config_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/config"
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

// TestCallbacksAllowCIDRs reads callbacks.allow_cidrs from a file and from
// the environment (comma-separated) into the reach callbacks are given.
func TestCallbacksAllowCIDRs(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := "callbacks:\n  allow_private: true\n  allow_cidrs: [\"10.20.0.0/16\", \"169.254.169.254\", \"fd00:ec2::254/128\"]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() (*config.Config, error){
		"file": func() (*config.Config, error) { return load(t, []string{"--config", file}, nil) },
		"environment": func() (*config.Config, error) {
			return load(t, nil, map[string]string{"GATEWAY_CALLBACKS_ALLOW_PRIVATE": "true",
				"GATEWAY_CALLBACKS_ALLOW_CIDRS": "10.20.0.0/16, 169.254.169.254,fd00:ec2::254/128"})
		},
	} {
		cfg, err := load()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := cfg.CallbackReach()
		want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("fd00:ec2::254/128")}
		if !r.AllowPrivate || !slices.Equal(r.AllowCIDRs, want) {
			t.Errorf("%s: CallbackReach() = %+v, want allow_private and %v", name, r, want)
		}
	}
	cfg, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.CallbackReach(); r.AllowPrivate || len(r.AllowCIDRs) != 0 {
		t.Errorf("default CallbackReach() = %+v, want public addresses only", r)
	}
}

// TestCallbacksAllowCIDRsRefused: every bad entry stops the start, named
// by its place in the list, with what is wrong with it.
func TestCallbacksAllowCIDRsRefused(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, map[string]string{"GATEWAY_CALLBACKS_ALLOW_CIDRS": "10.0.0.0/8,0.0.0.0/0,10.0.0.1/8,8.8.8.0/24,not-a-range,::ffff:10.0.0.0/104"})
	if err == nil {
		t.Fatal("Load with bad callbacks.allow_cidrs = nil, want an error")
	}
	for _, want := range []string{
		`callbacks.allow_cidrs.1: "0.0.0.0/0" is not within one non-public range`,
		`callbacks.allow_cidrs.2: "10.0.0.1/8" has bits set past its length: did you mean 10.0.0.0/8?`,
		`callbacks.allow_cidrs.3: "8.8.8.0/24" is not within one non-public range`,
		`callbacks.allow_cidrs.4: "not-a-range" is not a CIDR`,
		`callbacks.allow_cidrs.5: "::ffff:10.0.0.0/104" is IPv4 written as IPv6: write it as 10.0.0.0/8`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load error = %v\nwant it to say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "allow_cidrs.0") {
		t.Errorf("Load error = %v, want no complaint about the valid 10.0.0.0/8", err)
	}
}
