// Package config loads the gateway's configuration: defaults, then an optional
// file (--config or GATEWAY_CONFIG), then GATEWAY_* environment variables, then
// command-line flags, each overriding the one before. Every setting is declared
// once, in Settings, with its default, its documentation and its check.
package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/redact"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// Config is the gateway's effective configuration.
type Config struct {
	Listen     string           `mapstructure:"listen"`
	Log        LogConfig        `mapstructure:"log"`
	HTTP       HTTPConfig       `mapstructure:"http"`
	Auth       AuthConfig       `mapstructure:"auth"`
	Quota      QuotaConfig      `mapstructure:"quota"`
	Backend    string           `mapstructure:"backend"`
	Runtime    RuntimeConfig    `mapstructure:"runtime"`
	Cloudflare CloudflareConfig `mapstructure:"cloudflare"`
	Metrics    MetricsConfig    `mapstructure:"metrics"`
	// Capabilities are the operator's services guests may call by name.
	Capabilities map[string]CapabilityConfig `mapstructure:"capabilities"`

	// Effective is every setting's value as loaded, secrets redacted and
	// keys by name only: what the startup log line shows.
	Effective map[string]string `mapstructure:"-"`
	// Given are the keys set by the file, the environment or a flag, not
	// left at their defaults.
	Given map[string]bool `mapstructure:"-"`
	// Machine is what the runtime's derived defaults follow (runtime.go);
	// Load sets it to this machine.
	Machine   Machine         `mapstructure:"-"`
	Execution ExecutionConfig `mapstructure:"execution"`
	Storage   StorageConfig   `mapstructure:"storage"`
	Callbacks CallbacksConfig `mapstructure:"callbacks"`
	Packages  PackagesConfig  `mapstructure:"packages"`
}

// LogConfig configures the gateway's own log.
type LogConfig struct {
	Level string `mapstructure:"level"`
}

// HTTPConfig configures the HTTP server.
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	MaxRequestBytes   int64         `mapstructure:"max_request_bytes"`
	SSEHeartbeat      time.Duration `mapstructure:"sse_heartbeat"`
	ShutdownGrace     time.Duration `mapstructure:"shutdown_grace"`
	ShutdownDelay     time.Duration `mapstructure:"shutdown_delay"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	MaxHeaderBytes    int           `mapstructure:"max_header_bytes"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	ClientBuffer      int           `mapstructure:"client_buffer_bytes"`
	MaxLifetime       time.Duration `mapstructure:"max_request_lifetime"`
}

// AuthConfig configures API keys.
type AuthConfig struct {
	Disabled bool                 `mapstructure:"disabled"`
	Keys     map[string]KeyConfig `mapstructure:"keys"`
}

// KeyConfig is one API key: its hash (from `gateway keys new`), whether it
// is revoked, quota overrides (0: the defaults) and the secret signing its
// callbacks (empty: callbacks.secret).
type KeyConfig struct {
	Hash           string `mapstructure:"hash"`
	Revoked        bool   `mapstructure:"revoked"`
	Requests       int    `mapstructure:"requests"`
	Concurrency    int    `mapstructure:"concurrency"`
	MaxQueued      int    `mapstructure:"max_queued"`
	MaxStoredBytes int64  `mapstructure:"max_stored_bytes"`
	CallbackSecret Secret `mapstructure:"callback_secret"`
	// Scope is what the key may do: execute (the default) or metrics
	// (only GET /metrics).
	Scope string `mapstructure:"scope"`
}

// QuotaConfig holds the default per-key quotas; 0 means derived (see
// Config.Quotas).
type QuotaConfig struct {
	Requests    int           `mapstructure:"requests"`
	Window      time.Duration `mapstructure:"window"`
	Concurrency int           `mapstructure:"concurrency"`
}

// MetricsConfig configures GET /metrics.
type MetricsConfig struct {
	Public bool `mapstructure:"public"`
}

// CloudflareConfig configures the cloudflare backend and `gateway deploy`.
type CloudflareConfig struct {
	URL        string `mapstructure:"url"`
	ShimSecret Secret `mapstructure:"shim_secret"`
	AccountID  string `mapstructure:"account_id"`
	APIToken   Secret `mapstructure:"api_token"`
	ScriptName string `mapstructure:"script_name"`
	Route      string `mapstructure:"route"`
	// CustomDomain serves the shim on a Custom Domain of the zone instead
	// of a route (Cloudflare makes its DNS record and certificate).
	CustomDomain string `mapstructure:"custom_domain"`
	ZoneID       string `mapstructure:"zone_id"`
	APIBaseURL   string `mapstructure:"api_base_url"`
}

// Secret is a configuration value that must not be printed: its String
// (and so %v and log fields) shows only whether it is set.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redact.Text
}

// MarshalJSON keeps secrets out of JSON, such as the startup log line.
func (s Secret) MarshalJSON() ([]byte, error) {
	return []byte(`"` + s.String() + `"`), nil
}

// Value returns the secret itself, for the code that uses it.
func (s Secret) Value() string { return string(s) }

// RuntimeConfig configures the local pool of workerd processes.
type RuntimeConfig struct {
	Workerd        string        `mapstructure:"workerd"`
	Processes      int           `mapstructure:"processes"`
	MaxConcurrency int           `mapstructure:"max_concurrency"`
	MaxStarting    int           `mapstructure:"max_starting"`
	QueueSize      int           `mapstructure:"queue_size"`
	QueueTimeout   time.Duration `mapstructure:"queue_timeout"`
	StartTimeout   time.Duration `mapstructure:"start_timeout"`
	ProbeInterval  time.Duration `mapstructure:"probe_interval"`
	RecycleAfter   int           `mapstructure:"recycle_after"`
	RecycleRSSMB   int           `mapstructure:"recycle_rss_mb"`
	DrainTimeout   time.Duration `mapstructure:"drain_timeout"`
	V8HeapMB       int           `mapstructure:"v8_heap_mb"`
	ReuseKeys      int           `mapstructure:"reuse_keys"`
	Spare          bool          `mapstructure:"spare"`

	MemoryLimitMB int `mapstructure:"memory_limit_mb"`
	// UnresponsiveKill is how long a process may fail its probes before it is
	// killed; 0: twenty probe intervals (5 s by default).
	UnresponsiveKill time.Duration `mapstructure:"unresponsive_kill"`
}

// ExecutionConfig holds the defaults and bounds of executions.
type ExecutionConfig struct {
	CompatibilityDate string        `mapstructure:"compatibility_date"`
	DefaultTimeout    time.Duration `mapstructure:"default_timeout"`
	MaxTimeout        time.Duration `mapstructure:"max_timeout"`
	MaxResponseBytes  int64         `mapstructure:"max_response_bytes"`
	MaxLogLineBytes   int           `mapstructure:"max_log_line_bytes"`
	MaxLogBytes       int           `mapstructure:"max_log_bytes"`
	MaxCodeBytes      int           `mapstructure:"max_code_bytes"`
	MaxModules        int           `mapstructure:"max_modules"`
	MaxEnvBytes       int           `mapstructure:"max_env_bytes"`
	CPUMs             int           `mapstructure:"cpu_ms"`
	SubRequests       int           `mapstructure:"sub_requests"`
}

// Load reads the configuration for a command whose flags are in fs (already
// declared by Flags, not yet parsed) from args and the environment.
func Load(fs *pflag.FlagSet, args []string, getenv func(string) string) (*Config, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	v := viper.New()
	for _, s := range Settings {
		v.SetDefault(s.Key, s.Default)
	}
	path, _ := fs.GetString("config")
	if path == "" {
		path = getenv(EnvPrefix + "_CONFIG")
	}
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		if err := unknownKeys(v); err != nil {
			return nil, err
		}
	}
	// Environment over file, flags over environment. The environment comes
	// from getenv, not from viper's own os.Getenv, so callers decide it.
	given := map[string]bool{}
	for _, s := range Settings {
		given[s.Key] = path != "" && v.InConfig(s.Key)
		if val := getenv(s.Env()); val != "" {
			v.Set(s.Key, val)
			given[s.Key] = true
		} else if s.AltEnv != "" && getenv(s.AltEnv) != "" {
			v.Set(s.Key, getenv(s.AltEnv))
			given[s.Key] = true
		}
		if s.Flag != "" && fs.Changed(s.Flag) {
			v.Set(s.Key, fs.Lookup(s.Flag).Value.String())
			given[s.Key] = true
		}
	}
	var cfg Config
	hook := mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
		keysFromString,
		capabilitiesFromString,
	)
	if err := v.Unmarshal(&cfg, viper.DecodeHook(hook)); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	if err := invalid(append(cfg.expandCapabilities(getenv), cfg.problems()...)); err != nil {
		return nil, err
	}
	cfg.Given = given
	cfg.applyBackendDefaults()
	cfg.Machine = ThisMachine()
	cfg.Effective = effective(v, &cfg)
	cfg.Effective["execution.cpu_ms"] = fmt.Sprint(cfg.Execution.CPUMs) // the backend's default applied
	return &cfg, nil
}

func effective(v *viper.Viper, cfg *Config) map[string]string {
	out := make(map[string]string, len(Settings))
	for _, s := range Settings {
		val := fmt.Sprint(v.Get(s.Key))
		switch {
		case s.Key == "auth.keys":
			val = strings.Join(slices.Sorted(maps.Keys(cfg.Auth.Keys)), ",")
		case s.Key == "capabilities":
			val = strings.Join(slices.Sorted(maps.Keys(cfg.Capabilities)), ",")
		case s.Secret && val != "":
			val = redact.Text
		}
		out[s.Key] = val
	}
	return out
}

// Flags declares the configuration flags on fs.
func Flags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration `file` (YAML, JSON or TOML); also "+EnvPrefix+"_CONFIG")
	for _, s := range Settings {
		if s.Flag == "" {
			continue
		}
		// pflag would take a backquoted word of the help for the value's
		// name: the name is the flag value's type instead.
		fs.Var(&flagValue{setting: s, value: fmt.Sprint(s.Default)}, s.Flag, strings.ReplaceAll(s.Help, "`", `"`))
	}
}

// flagValue is a setting's flag: its value as given, checked as the
// setting's kind (a number for an int) when the flags are parsed, and its
// value name (Setting.Value) in --help.
type flagValue struct {
	setting Setting
	value   string
}

func (f *flagValue) String() string { return f.value }
func (f *flagValue) Type() string   { return f.setting.Value }

func (f *flagValue) Set(v string) error {
	if _, isInt := f.setting.Default.(int); isInt {
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
	}
	f.value = v
	return nil
}

// keysFromString reads auth.keys given as a string (from the environment or
// a flag): "name=sha256:…,name2=sha256:…".
func keysFromString(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeOf(map[string]KeyConfig{}) {
		return data, nil
	}
	keys := map[string]KeyConfig{}
	for _, entry := range strings.Split(data.(string), ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, hash, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("auth.keys entry %q is not name=hash", entry)
		}
		// A hash is "sha256:" and hex; a scope may follow it: ":metrics".
		hash = strings.TrimSpace(hash)
		scope := ""
		if i := strings.LastIndexByte(hash, ':'); i > len("sha256") {
			hash, scope = hash[:i], hash[i+1:]
		}
		keys[strings.TrimSpace(name)] = KeyConfig{Hash: hash, Scope: scope}
	}
	return keys, nil
}

// keyFields are the settings of one API key in a file, from KeyConfig's tags.
var keyFields = func() map[string]bool {
	fields := map[string]bool{}
	for f := range reflect.TypeFor[KeyConfig]().Fields() {
		fields[f.Tag.Get("mapstructure")] = true
	}
	return fields
}()

func unknownKeys(v *viper.Viper) error {
	known := make(map[string]bool, len(Settings))
	for _, s := range Settings {
		known[s.Key] = true
	}
	var errs []error
	for _, k := range v.AllKeys() {
		if rest, ok := strings.CutPrefix(k, "auth.keys."); ok {
			if _, field, ok := strings.Cut(rest, "."); ok && keyFields[field] {
				continue
			}
		}
		if !known[k] && !knownCapabilityKey(k) {
			errs = append(errs, fmt.Errorf("unknown setting %q", k))
		}
	}
	return errors.Join(errs...)
}

// CallbackSecret returns the secret signing the callbacks of API key
// name's executions: its own callback_secret, else callbacks.secret; nil
// if neither is set.
func (c *Config) CallbackSecret(name string) []byte {
	s := c.Callbacks.Secret
	if k, ok := c.Auth.Keys[name]; ok && k.CallbackSecret != "" {
		s = k.CallbackSecret
	}
	if s == "" {
		return nil
	}
	return []byte(s.Value())
}

// CallbackReach is where callbacks may go: callbacks.allow_private and
// callbacks.allow_cidrs, validated.
func (c *Config) CallbackReach() webhook.Reach {
	r := webhook.Reach{AllowPrivate: c.Callbacks.AllowPrivate}
	for _, s := range c.Callbacks.AllowCIDRs {
		if p, err := webhook.ParseAllowCIDR(s); err == nil {
			r.AllowCIDRs = append(r.AllowCIDRs, p)
		}
	}
	return r
}

// Keys returns the configured API keys in name order.
func (c *Config) Keys() []auth.Key {
	var keys []auth.Key
	for _, name := range slices.Sorted(maps.Keys(c.Auth.Keys)) {
		k := c.Auth.Keys[name]
		hash, _ := auth.ParseHash(k.Hash) // validated
		keys = append(keys, auth.Key{Name: name, Hash: hash, Revoked: k.Revoked, Requests: k.Requests, Concurrency: k.Concurrency,
			MaxQueued: k.MaxQueued, MaxStoredBytes: k.MaxStoredBytes, Scope: k.Scope})
	}
	return keys
}
