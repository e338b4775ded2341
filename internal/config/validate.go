package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// Validate checks every setting and reports every problem found, each
// named by its key: first each setting's own Check, from Settings, then
// the few checks that relate one setting to another.
func (c *Config) Validate() error {
	return invalid(c.problems())
}

// invalid joins problems into the error that stops the start, or nil.
func invalid(problems []error) error {
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(problems...))
	}
	return nil
}

// problems lists every problem of the configuration.
func (c *Config) problems() []error {
	var errs []error
	root := reflect.ValueOf(c).Elem()
	for _, s := range Settings {
		v, ok := fieldOf(root, s.Key)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: no field of Config has this key", s.Key))
		case s.Check != nil && (s.Backend == "" || s.Backend == c.Backend):
			errs = append(errs, keyed(s.Key, s.Check(v.Interface()))...)
		}
	}
	errs = append(errs, c.crossChecks()...)
	return append(errs, c.checkCapabilityKeys()...)
}

// crossChecks are the checks of one setting against another.
func (c *Config) crossChecks() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if len(c.Auth.Keys) == 0 && !c.Auth.Disabled && !isLoopback(c.Listen) {
		bad("listen", "%q is not a loopback address and no API keys are configured: configure auth.keys (see `gateway keys new`), or set auth.disabled=true to serve without keys", c.Listen)
	}
	if c.HTTP.MaxLifetime != 0 && c.HTTP.MaxLifetime <= c.Execution.MaxTimeout {
		bad("http.max_request_lifetime", "must be 0 (derived) or longer than execution.max_timeout %v", c.Execution.MaxTimeout)
	}
	if c.Execution.MaxTimeout < c.Execution.DefaultTimeout {
		bad("execution.max_timeout", "%v is less than execution.default_timeout %v", c.Execution.MaxTimeout, c.Execution.DefaultTimeout)
	}
	if c.Execution.MaxLogBytes < c.Execution.MaxLogLineBytes {
		bad("execution.max_log_bytes", "must be at least execution.max_log_line_bytes")
	}
	if c.Packages.CacheMaxBytes > 0 && c.Packages.CacheMaxBytes < c.Packages.MaxBytes {
		bad("packages.cache_max_bytes", "%d is less than packages.max_bytes %d: a set that may be resolved could never be kept", c.Packages.CacheMaxBytes, c.Packages.MaxBytes)
	}
	return errs
}

// fieldOf finds the field of Config that key decodes into, following the
// mapstructure tags section by section ("runtime.queue_size":
// Runtime.QueueSize), so a key is spelled only in its tag and in Settings.
func fieldOf(v reflect.Value, key string) (reflect.Value, bool) {
	for part := range strings.SplitSeq(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		next := reflect.Value{}
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("mapstructure") == part {
				next = v.Field(i)
			}
		}
		if !next.IsValid() {
			return reflect.Value{}, false
		}
		v = next
	}
	return v, true
}

// fieldError is a problem in one part of a setting, such as the hash of one
// API key: Validate names it key.field (auth.keys.ci.hash).
type fieldError struct {
	field string
	err   error
}

func (e fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e fieldError) Unwrap() error { return e.err }

// keyed names key in front of each problem err holds (errors.Join of
// several, or one, or none).
func keyed(key string, err error) []error {
	var f fieldError
	joined, isJoined := err.(interface{ Unwrap() []error })
	switch {
	case err == nil:
		return nil
	case isJoined:
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, keyed(key, e)...)
		}
		return out
	case errors.As(err, &f):
		return []error{fmt.Errorf("%s.%s: %w", key, f.field, f.err)}
	}
	return []error{fmt.Errorf("%s: %w", key, err)}
}

// of makes a Check of a function of the setting's own Go type.
func of[T any](check func(T) error) func(any) error {
	return func(v any) error {
		t, ok := v.(T)
		if !ok {
			return fmt.Errorf("is a %T, checked as a %T", v, t)
		}
		return check(t)
	}
}

// atLeastSaying refuses a number (a count, a size or a duration) below
// least with msg.
func atLeastSaying(least int64, msg string) func(any) error {
	return func(v any) error {
		if reflect.ValueOf(v).Int() < least {
			return errors.New(msg)
		}
		return nil
	}
}

// The bounds most settings have.
var (
	positive    = atLeastSaying(1, "must be positive")
	notNegative = atLeastSaying(0, "must not be negative")
	derived     = atLeastSaying(0, "must not be negative (0: derived)") // 0: worked out from others
)

// atLeast refuses a number below least.
func atLeast(least int64) func(any) error {
	return atLeastSaying(least, fmt.Sprintf("must be at least %d", least))
}

// zeroOrAtLeast refuses a number other than 0 (off, or the default) below
// least.
func zeroOrAtLeast(least int64) func(any) error {
	return func(v any) error {
		if n := reflect.ValueOf(v).Int(); n != 0 && n < least {
			return fmt.Errorf("must be 0 or at least %d", least)
		}
		return nil
	}
}

// oneOf refuses a string that is not one of values.
func oneOf(values ...string) func(any) error {
	return of(func(s string) error {
		if !slices.Contains(values, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(values, ", "))
		}
		return nil
	})
}

// hostPort refuses an address that is not host:port.
func hostPort(s string) error {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	return nil
}

var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// date refuses anything but a real day written YYYY-MM-DD.
func date(s string) error {
	if _, err := time.Parse(time.DateOnly, s); err != nil || !datePattern.MatchString(s) {
		return fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return nil
}

// existingFile refuses a path that names nothing; empty means unset.
func existingFile(path string) error {
	if path == "" {
		return nil
	}
	_, err := os.Stat(path)
	return err
}

// checkKeys refuses API keys with a bad name, a bad hash or a negative quota.
func checkKeys(keys map[string]KeyConfig) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		k := keys[name]
		if err := auth.ValidName(name); err != nil {
			errs = append(errs, err)
		}
		if _, err := auth.ParseHash(k.Hash); err != nil {
			errs = append(errs, fieldError{name + ".hash", err})
		}
		if !auth.ValidScope(k.Scope) {
			errs = append(errs, fieldError{name + ".scope", fmt.Errorf("%q is not a scope: %s or %s", k.Scope, auth.ScopeExecute, auth.ScopeMetrics)})
		}
		if err := checkCallbackSecret(k.CallbackSecret); err != nil {
			errs = append(errs, fieldError{name + ".callback_secret", err})
		}
		if k.Requests < 0 || k.Concurrency < 0 || k.MaxQueued < 0 || k.MaxStoredBytes < 0 {
			errs = append(errs, fieldError{name, errors.New("requests, concurrency, max_queued and max_stored_bytes must not be negative")})
		}
	}
	return errors.Join(errs...)
}

// checkCallbackSecret refuses a callback secret too short to sign with;
// empty is allowed (none).
func checkCallbackSecret(s Secret) error {
	if s != "" && len(s) < 16 {
		return errors.New("must be at least 16 characters")
	}
	return nil
}

// checkAllowCIDRs refuses callbacks.allow_cidrs entries that are not one
// non-public range each, naming each by its place in the list.
func checkAllowCIDRs(list []string) error {
	var errs []error
	for i, s := range list {
		if _, err := webhook.ParseAllowCIDR(s); err != nil {
			errs = append(errs, fieldError{strconv.Itoa(i), err})
		}
	}
	return errors.Join(errs...)
}

// checkShimSecret refuses a secret too short to sign with.
func checkShimSecret(s Secret) error {
	if len(s) < 32 {
		return errors.New("must be set, at least 32 characters, to the shim's SHIM_SECRET")
	}
	return nil
}

// checkShimURL accepts the deployed shim's URL: https://, or http:// only to
// a loopback host (a local stand-in, in tests), since the gateway sends
// signed executions, secrets included, to it.
func checkShimURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not the URL of the deployed shim (https://…)", raw)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("%q must use https:// (http:// is allowed only to a loopback address)", raw)
	}
	return nil
}

// isLoopback reports whether a listen address only accepts local clients.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return true // reported as invalid by hostPort
	}
	return loopbackHost(host)
}

// loopbackHost reports whether host is localhost or a loopback IP address
// (127.0.0.0/8, ::1).
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkStorageURL accepts no URL or a postgres:// one.
func checkStorageURL(s Secret) error {
	v := s.Value()
	if v == "" || strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://") {
		return nil
	}
	return errors.New("must be a postgres:// or postgresql:// URL")
}

// nonEmpty refuses an empty value.
func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// checkRegistryURL accepts no URL (npm's default) or an http(s) one.
func checkRegistryURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be the http(s) URL of an npm registry")
	}
	return nil
}

// checkPackagePatterns accepts package name patterns (packages.CheckPattern).
func checkPackagePatterns(patterns []string) error {
	var errs []error
	for _, p := range patterns {
		errs = append(errs, packages.CheckPattern(p))
	}
	return errors.Join(errs...)
}
