package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/worker"
)

// CapabilityConfig is one operator-defined service guests may call through
// an env binding of its name, without ever holding its credentials: the
// shim adds Headers to each call, outside the guest's isolate.
type CapabilityConfig struct {
	URL      string            `mapstructure:"url"`
	Headers  map[string]Secret `mapstructure:"headers"`
	Methods  []string          `mapstructure:"methods"`
	Keys     []string          `mapstructure:"keys"`
	Timeout  time.Duration     `mapstructure:"timeout"`
	MaxCalls int               `mapstructure:"max_calls"`
	// ForwardHeaders are the guest's request headers passed on to the
	// service (any case); empty: worker.CapabilityRules.ForwardHeaders.
	ForwardHeaders []string `mapstructure:"forward_headers"`
	// MaxAnswerBytes is the longest answer (decoded) one call passes to
	// the guest, masked; 0: worker.CapabilityRules.MaxAnswerBytes.
	MaxAnswerBytes int64 `mapstructure:"max_answer_bytes"`
	// Cloudflare says how the shim reaches the service on Cloudflare.
	Cloudflare CapabilityCloudflare `mapstructure:"cloudflare"`

	// secrets are the values of the environment variables spliced into
	// Headers (expand), masked like the header values themselves.
	secrets []string
}

// CapabilityCloudflare is how the shim on Cloudflare reaches a
// capability's service.
type CapabilityCloudflare struct {
	// VPCServiceID, if set, is the id of a Workers VPC service (a service
	// in a private network, reached through a Cloudflare Tunnel): gateway
	// deploy binds the shim to it, and every call goes through that
	// binding; the capability's url names the host and path the service
	// is asked for. The local runtime reaches the url itself.
	VPCServiceID string `mapstructure:"vpc_service_id"`
}

// capabilityCloudflareFields are the settings under capabilities.NAME.cloudflare.
var capabilityCloudflareFields = map[string]bool{"vpc_service_id": true}

// vpcServiceID is a Workers VPC service's id: a UUID.
var vpcServiceID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Capability defaults: a capability that names none of these.
const (
	DefaultCapabilityTimeout  = 10 * time.Second
	DefaultCapabilityMaxCalls = 50
)

// capabilityFields are the settings of one capability in a file, from
// CapabilityConfig's tags.
var capabilityFields = func() map[string]bool {
	fields := map[string]bool{}
	for f := range reflect.TypeFor[CapabilityConfig]().Fields() {
		if tag := f.Tag.Get("mapstructure"); tag != "" {
			fields[tag] = true
		}
	}
	return fields
}()

// knownCapabilityKey reports whether k (as viper lists it, lower case) is
// a setting of one capability: capabilities.NAME.FIELD, or a header under
// capabilities.NAME.headers.
func knownCapabilityKey(k string) bool {
	rest, ok := strings.CutPrefix(k, "capabilities.")
	if !ok {
		return false
	}
	_, field, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	if strings.HasPrefix(field, "headers.") {
		return true
	}
	if sub, ok := strings.CutPrefix(field, "cloudflare."); ok {
		return capabilityCloudflareFields[sub]
	}
	return capabilityFields[field]
}

// capabilitiesFromString reads capabilities given as a string (from the
// environment): a JSON object of the same shape as the file's section.
func capabilitiesFromString(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeFor[map[string]CapabilityConfig]() {
		return data, nil
	}
	text := strings.TrimSpace(data.(string))
	if text == "" {
		return map[string]any{}, nil
	}
	var m map[string]map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("capabilities from the environment must be a JSON object of objects: %w", err)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m)) {
		for _, field := range slices.Sorted(maps.Keys(m[name])) {
			if !capabilityFields[field] {
				errs = append(errs, fmt.Errorf("unknown setting %q", "capabilities."+name+"."+field))
			}
			if sub, ok := m[name][field].(map[string]any); ok && field == "cloudflare" {
				for _, k := range slices.Sorted(maps.Keys(sub)) {
					if !capabilityCloudflareFields[k] {
						errs = append(errs, fmt.Errorf("unknown setting %q", "capabilities."+name+".cloudflare."+k))
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make(map[string]any, len(m))
	for name, c := range m {
		out[name] = c
	}
	return out, nil
}

var (
	varRef      = regexp.MustCompile(`\$\{([^}]*)\}`)
	varName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	methodToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Z-]+$")
	headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// framing are the header names a capability may not set: the request's own
// framing and routing, which the runtime sets (capability-rules.json).
var framing = worker.CapabilityRules.Group("framing")

// expandCapabilities replaces each ${VAR} in the capabilities' URLs and
// header values with the variable from getenv, and writes header names in
// lower case. An unset or empty variable
// is a problem, named by its setting; every one is reported.
func (c *Config) expandCapabilities(getenv func(string) string) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Capabilities)) {
		capability := c.Capabilities[name]
		key := "capabilities." + name
		var err []error
		capability.URL, err = expand(key+".url", capability.URL, getenv, nil)
		errs = append(errs, err...)
		headers := make(map[string]Secret, len(capability.Headers))
		for _, h := range slices.Sorted(maps.Keys(capability.Headers)) {
			value, err := expand(key+".headers."+h, capability.Headers[h].Value(), getenv, &capability.secrets)
			errs = append(errs, err...)
			headers[strings.ToLower(h)] = Secret(value) // as a file's names come from viper
		}
		capability.Headers = headers
		c.Capabilities[name] = capability
	}
	return errs
}

// expand splices the environment variables into s; the values spliced are
// added to secrets when it is not nil.
func expand(key, s string, getenv func(string) string, secrets *[]string) (string, []error) {
	var errs []error
	out := varRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		value := ""
		if varName.MatchString(name) {
			value = getenv(name)
		}
		switch {
		case !varName.MatchString(name):
			errs = append(errs, fmt.Errorf("%s: %q is not an environment variable name", key, name))
		case value == "":
			errs = append(errs, fmt.Errorf("%s: environment variable %s is not set", key, name))
		case secrets != nil:
			*secrets = append(*secrets, value)
		}
		return value
	})
	return out, errs
}

// checkCapabilities refuses capabilities with a bad name, base URL, header,
// method, timeout or call cap; each problem is named by its field.
func checkCapabilities(caps map[string]CapabilityConfig) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(caps)) {
		c := caps[name]
		bad := func(field string, err error) { errs = append(errs, fieldError{name + field, err}) }
		if !execution.ValidCapabilityName(name) {
			errs = append(errs, fmt.Errorf("capability name %q must be a lower-case letter, then letters, digits or _ (at most 64)", name))
		}
		if err := checkBaseURL(c.URL); err != nil {
			bad(".url", err)
		}
		for _, h := range slices.Sorted(maps.Keys(c.Headers)) {
			if err := checkCapabilityHeader(h, c.Headers[h].Value()); err != nil {
				bad(".headers."+h, err)
			}
		}
		for _, m := range c.Methods {
			if !methodToken.MatchString(m) {
				bad(".methods", fmt.Errorf("%q is not an HTTP method in upper case", m))
			}
		}
		for _, k := range c.Keys {
			if err := auth.ValidName(k); err != nil {
				bad(".keys", err)
			}
		}
		if c.Timeout < 0 {
			bad(".timeout", errors.New("must not be negative (0: 10s)"))
		}
		if c.MaxCalls < 0 {
			bad(".max_calls", errors.New("must not be negative (0: 50)"))
		}
		for _, h := range c.ForwardHeaders {
			if err := checkForwardHeader(h); err != nil {
				bad(".forward_headers", err)
			}
		}
		if c.MaxAnswerBytes < 0 {
			bad(".max_answer_bytes", fmt.Errorf("must not be negative (0: %d)", worker.CapabilityRules.MaxAnswerBytes))
		}
		if id := c.Cloudflare.VPCServiceID; id != "" && !vpcServiceID.MatchString(id) {
			bad(".cloudflare.vpc_service_id", fmt.Errorf("%q is not a Workers VPC service id (a UUID, as `wrangler vpc service create` prints it)", id))
		}
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts an http(s) URL with a host, no user info, query or
// fragment, and a plain path: calls must lie under it.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", raw)
	case u.User != nil:
		return errors.New("must not hold user info (put credentials in headers)")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#"):
		return errors.New("must not have a query or a fragment")
	case u.RawPath != "" || !plainPath(u.Path):
		return fmt.Errorf("its path must be plain: segments of letters, digits and %s only, no . or .. segments", strings.Trim(worker.CapabilityRules.PathPlain, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil && strings.Contains(u.Host, ":") && !strings.HasPrefix(u.Host, "[") {
		return fmt.Errorf("%q has a bad host or port", u.Host)
	}
	return nil
}

// plainPath reports whether a base URL's path holds only the characters a
// call's path may hold as they are (capability-rules.json pathPlain), and
// no segment of dots.
func plainPath(path string) bool {
	for _, segment := range strings.Split(path, "/") {
		if strings.Trim(segment, ".") == "" && segment != "" {
			return false
		}
		for _, r := range segment {
			if !strings.ContainsRune(worker.CapabilityRules.PathPlain, r) {
				return false
			}
		}
	}
	return true
}

// checkCapabilityHeader refuses a header name that is not a token or that
// the runtime sets itself, and a value with a line break or NUL.
func checkCapabilityHeader(name, value string) error {
	if !headerToken.MatchString(name) {
		return fmt.Errorf("%q is not a header name", name)
	}
	if framing.Matches(strings.ToLower(name)) {
		return fmt.Errorf("%s is set by the runtime, not by a capability", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return errors.New("the value must not hold a line break or NUL")
	}
	return nil
}

// checkForwardHeader refuses a name in forward_headers that is not a header
// name, or that no call forwards (capability-rules.json), saying why.
func checkForwardHeader(name string) error {
	if !headerToken.MatchString(name) {
		return fmt.Errorf("%q is not a header name", name)
	}
	if why := worker.CapabilityRules.NeverForwarded(name); why != "" {
		return fmt.Errorf("%s is never forwarded: %s", name, why)
	}
	return nil
}

// checkCapabilityKeys refuses a capability scoped to an API key that is not
// configured.
func (c *Config) checkCapabilityKeys() []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Capabilities)) {
		for _, k := range c.Capabilities[name].Keys {
			if _, ok := c.Auth.Keys[k]; !ok {
				errs = append(errs, fmt.Errorf("capabilities.%s.keys: no API key %q in auth.keys", name, k))
			}
		}
	}
	return errs
}

// CapabilitySet returns the capabilities as the API grants them, defaults
// applied: the base URL ending in /, methods GET unless set.
func (c *Config) CapabilitySet() map[string]execution.Capability {
	out := make(map[string]execution.Capability, len(c.Capabilities))
	for name, cc := range c.Capabilities {
		capability := execution.Capability{
			URL:       baseURL(cc.URL),
			Headers:   map[string]string{},
			Methods:   cc.Methods,
			TimeoutMs: cc.Timeout.Milliseconds(),
			MaxCalls:  cc.MaxCalls,
			Keys:      cc.Keys,
			Secrets:   slices.Clone(cc.secrets),

			ForwardHeaders: forwardHeaders(cc.ForwardHeaders),
			MaxAnswerBytes: cc.MaxAnswerBytes,
			VPC:            cc.Cloudflare.VPCServiceID != "",
		}
		for h, v := range cc.Headers {
			capability.Headers[h] = v.Value()
			if v != "" {
				capability.Secrets = append(capability.Secrets, v.Value())
			}
		}
		if len(capability.Methods) == 0 {
			capability.Methods = []string{"GET"}
		}
		if capability.TimeoutMs <= 0 {
			capability.TimeoutMs = DefaultCapabilityTimeout.Milliseconds()
		}
		if capability.MaxCalls <= 0 {
			capability.MaxCalls = DefaultCapabilityMaxCalls
		}
		if capability.MaxAnswerBytes <= 0 {
			capability.MaxAnswerBytes = worker.CapabilityRules.MaxAnswerBytes
		}
		out[name] = capability
	}
	return out
}

// forwardHeaders is the list a capability forwards: names in lower case,
// sorted, each once; the default list if names is empty.
func forwardHeaders(names []string) []string {
	if len(names) == 0 {
		return slices.Clone(worker.CapabilityRules.ForwardHeaders)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// baseURL is raw with its path ending in /, so that "under the base" is a
// prefix on a segment boundary.
func baseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String()
}
