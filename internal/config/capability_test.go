package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/worker"
)

// writeFile writes a config file into a temporary folder and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

const capabilityFile = `
auth:
  keys:
    ci: {hash: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
capabilities:
  inventory:
    url: "http://10.0.3.7:9000/api"
    headers:
      Authorization: "Bearer ${INVENTORY_TOKEN}"
      X-Tenant: "t-${TENANT}"
    methods: [GET, POST]
    keys: [ci]
    timeout: 5s
    max_calls: 7
  plain:
    url: "https://svc.example.com/"
`

func TestCapabilitiesLoad(t *testing.T) {
	t.Parallel()
	file := writeFile(t, capabilityFile)
	cfg, err := load(t, []string{"--config", file}, map[string]string{"INVENTORY_TOKEN": "tok-123", "TENANT": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	set := cfg.CapabilitySet()
	inv := set["inventory"]
	if inv.URL != "http://10.0.3.7:9000/api/" {
		t.Errorf("inventory URL = %q, want the base ending in /", inv.URL)
	}
	if got := inv.Headers["authorization"]; got != "Bearer tok-123" {
		t.Errorf("authorization header = %q, want the variable spliced in", got)
	}
	if !slices.Equal(inv.Methods, []string{"GET", "POST"}) || inv.TimeoutMs != 5000 || inv.MaxCalls != 7 || !slices.Equal(inv.Keys, []string{"ci"}) {
		t.Errorf("inventory = %+v", inv)
	}
	for _, secret := range []string{"tok-123", "acme", "Bearer tok-123", "t-acme"} {
		if !slices.Contains(inv.Secrets, secret) {
			t.Errorf("Secrets = %q, want %q among them", inv.Secrets, secret)
		}
	}
	plain := set["plain"]
	if !slices.Equal(plain.Methods, []string{"GET"}) || plain.TimeoutMs != 10000 || plain.MaxCalls != 50 || len(plain.Secrets) != 0 {
		t.Errorf("plain = %+v, want the defaults", plain)
	}
	if cfg.Effective["capabilities"] != "inventory,plain" {
		t.Errorf("Effective[capabilities] = %q, want the names only", cfg.Effective["capabilities"])
	}
	if strings.Contains(strings.Join(slices.Collect(mapValues(cfg.Effective)), " "), "tok-123") {
		t.Error("Effective shows a header value")
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func TestCapabilitiesFromEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, map[string]string{
		"GATEWAY_CAPABILITIES": `{"search": {"url": "http://127.0.0.1:9/q/", "headers": {"X-Key": "${K}"}, "timeout": "2s"}}`,
		"K":                    "v",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Capabilities["search"]
	if c.URL != "http://127.0.0.1:9/q/" || c.Headers["x-key"].Value() != "v" || c.Timeout != 2*time.Second {
		t.Errorf("search = %+v", c)
	}
}

func TestCapabilitiesFromEnvironmentUnknownField(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, map[string]string{"GATEWAY_CAPABILITIES": `{"search": {"url": "http://127.0.0.1:9/", "max_call": 3}}`})
	if err == nil || !strings.Contains(err.Error(), `unknown setting "capabilities.search.max_call"`) {
		t.Errorf("Load = %v, want the misspelt field named", err)
	}
	_, err = load(t, nil, map[string]string{"GATEWAY_CAPABILITIES": `["search"]`})
	if err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("Load = %v, want a JSON object asked for", err)
	}
}

// TestCapabilitiesInvalid lists every problem of a bad capabilities
// section at once, each named by its setting.
func TestCapabilitiesInvalid(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
capabilities:
  "9bad":
    url: "http://x/"
  noscheme:
    url: "10.0.0.1:80/api/"
  userinfo:
    url: "http://user:pw@10.0.0.1/api/"
  query:
    url: "http://10.0.0.1/api/?a=b"
  dots:
    url: "http://10.0.0.1/api/../admin/"
  encoded:
    url: "http://10.0.0.1/api%2Fx/"
  unset:
    url: "http://10.0.0.1/"
    headers:
      Authorization: "Bearer ${NO_SUCH_VARIABLE_SET}"
  badheader:
    url: "http://10.0.0.1/"
    headers:
      Host: "evil"
  badmethod:
    url: "http://10.0.0.1/"
    methods: ["get"]
  scoped:
    url: "http://10.0.0.1/"
    keys: [nobody]
  negative:
    url: "http://10.0.0.1/"
    timeout: -1s
    max_calls: -1
`)
	_, err := load(t, []string{"--config", file}, nil)
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, want := range []string{
		`"9bad"`, "capabilities.noscheme.url:", "capabilities.userinfo.url:", "capabilities.query.url:",
		"capabilities.dots.url:", "capabilities.encoded.url:", "capabilities.unset.headers.authorization: environment variable NO_SUCH_VARIABLE_SET is not set",
		"capabilities.badheader.headers.host:", "capabilities.badmethod.methods:", `capabilities.scoped.keys: no API key "nobody"`,
		"capabilities.negative.timeout:", "capabilities.negative.max_calls:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// TestCapabilitiesUnknownFieldAlone stops the start on a misspelt field
// even when everything else is valid.
func TestCapabilitiesUnknownFieldAlone(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "capabilities:\n  inv:\n    url: \"http://10.0.0.1/\"\n    max_call: 3\n")
	_, err := load(t, []string{"--config", file}, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown setting "capabilities.inv.max_call"`) {
		t.Errorf("Load = %v, want the unknown setting named", err)
	}
}

func TestCapabilitiesNegativeBounds(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "capabilities:\n  inv:\n    url: \"http://10.0.0.1/\"\n    timeout: -1s\n    max_calls: -2\n")
	_, err := load(t, []string{"--config", file}, nil)
	for _, want := range []string{"capabilities.inv.timeout:", "capabilities.inv.max_calls:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v, want %s named", err, want)
		}
	}
}

// TestCapabilityForwardHeaders: a capability forwards the default list
// unless it names its own; max_answer_bytes defaults from the shim's
// rules file.
func TestCapabilityForwardHeaders(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
capabilities:
  plain:
    url: "http://10.0.0.1/"
  custom:
    url: "http://10.0.0.1/"
    forward_headers: [Accept, X-Request-Id, accept]
    max_answer_bytes: 1048576
`)
	cfg, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := cfg.CapabilitySet()
	if got := set["plain"].ForwardHeaders; !slices.Equal(got, worker.CapabilityRules.ForwardHeaders) || set["plain"].MaxAnswerBytes != worker.CapabilityRules.MaxAnswerBytes {
		t.Errorf("plain = %v, %d; want the default list and bound", got, set["plain"].MaxAnswerBytes)
	}
	if got := set["custom"].ForwardHeaders; !slices.Equal(got, []string{"accept", "x-request-id"}) || set["custom"].MaxAnswerBytes != 1<<20 {
		t.Errorf("custom = %v, %d; want its own list in lower case, once each, and its bound", got, set["custom"].MaxAnswerBytes)
	}
}

// TestCapabilityForwardHeadersRefused: a header no call may forward is
// refused in forward_headers, in any spelling, each named with why.
func TestCapabilityForwardHeadersRefused(t *testing.T) {
	t.Parallel()
	refused := map[string]string{
		"X_Forwarded_For": "servers behind CGI", "x_custom": "servers behind CGI", "Content_Type": "servers behind CGI",
		"X-HTTP-Method-Override": "method or the path", "X-Original-URI": "method or the path", "x-ms-http-method": "method or the path",
		"X-Forwarded-For": "client's address", "Forwarded": "client's address", "X-Real-IP": "client's address", "Cf-Connecting-Ip": "client's address",
		"Accept-Encoding": "past the masking", "Range": "past the masking", "If-Range": "past the masking",
		"Host": "framing", "Content-Length": "framing", "Transfer-Encoding": "framing",
		"bad header": "not a header name",
	}
	var list []string
	for h := range refused {
		list = append(list, `"`+h+`"`)
	}
	file := writeFile(t, "capabilities:\n  inv:\n    url: \"http://10.0.0.1/\"\n    max_answer_bytes: -1\n    forward_headers: ["+strings.Join(list, ", ")+"]\n")
	_, err := load(t, []string{"--config", file}, nil)
	if err == nil {
		t.Fatal("Load succeeded, want every header refused")
	}
	for h, why := range refused {
		if !strings.Contains(err.Error(), "capabilities.inv.forward_headers: ") || !strings.Contains(err.Error(), h) {
			t.Errorf("error does not name %s:\n%v", h, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.Contains(line, h+" ") || strings.Contains(line, `"`+h+`"`) {
				if !strings.Contains(line, why) {
					t.Errorf("%s refused as %q, want it to say %q", h, line, why)
				}
			}
		}
	}
	if !strings.Contains(err.Error(), "capabilities.inv.max_answer_bytes:") {
		t.Errorf("error does not name max_answer_bytes:\n%v", err)
	}
}

// TestCapabilityBasePathPlain: a base path with characters a call's path
// may not hold as they are (a path parameter, say) is refused.
func TestCapabilityBasePathPlain(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://10.0.0.1/api;v=1/", "http://10.0.0.1/a|b/", "http://10.0.0.1/.../", "http://10.0.0.1/caf%C3%A9/"} {
		file := writeFile(t, "capabilities:\n  inv:\n    url: \""+u+"\"\n")
		if _, err := load(t, []string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), "capabilities.inv.url: its path must be plain") {
			t.Errorf("Load(%s) = %v, want the path refused", u, err)
		}
	}
}

// TestCapabilityVPCService: cloudflare.vpc_service_id, in a file or in the
// environment's JSON, marks the capability as reached through its VPC
// binding; an id that is not a UUID and an unknown setting beside it are
// refused, each named.
func TestCapabilityVPCService(t *testing.T) {
	t.Parallel()
	const id = "0199295b-b3ac-7760-8246-bca40877b3e9"
	file := writeFile(t, "capabilities:\n  billing:\n    url: \"http://10.0.3.7:9000/api/\"\n    cloudflare:\n      vpc_service_id: "+id+"\n  plain:\n    url: \"http://10.0.0.1/\"\n")
	cfg, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Capabilities["billing"].Cloudflare.VPCServiceID; got != id {
		t.Errorf("billing's vpc_service_id = %q, want %q", got, id)
	}
	if set := cfg.CapabilitySet(); !set["billing"].VPC || set["plain"].VPC {
		t.Errorf("VPC: billing %v, plain %v; want true, false", set["billing"].VPC, set["plain"].VPC)
	}
	cfg, err = load(t, nil, map[string]string{"GATEWAY_CAPABILITIES": `{"billing": {"url": "http://10.0.3.7/", "cloudflare": {"vpc_service_id": "` + id + `"}}}`})
	if err != nil || !cfg.CapabilitySet()["billing"].VPC {
		t.Errorf("from the environment: %v; want billing reached through its VPC binding", err)
	}
	if _, err := load(t, nil, map[string]string{"GATEWAY_CAPABILITIES": `{"billing": {"url": "http://10.0.3.7/", "cloudflare": {"vpc_service": "` + id + `"}}}`}); err == nil {
		t.Error("from the environment, an unknown setting under cloudflare was taken")
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"not a uuid":      {"vpc_service_id: billing-svc", "capabilities.billing.cloudflare.vpc_service_id:"},
		"a uuid too long": {"vpc_service_id: " + id + "0", "capabilities.billing.cloudflare.vpc_service_id:"},
		"braces":          {`vpc_service_id: "{` + id + `}"`, "capabilities.billing.cloudflare.vpc_service_id:"},
		"unknown setting": {"vpc_service: " + id, "capabilities.billing.cloudflare.vpc_service"},
	} {
		file := writeFile(t, "capabilities:\n  billing:\n    url: \"http://10.0.3.7/\"\n    cloudflare:\n      "+tc.yaml+"\n")
		if _, err := load(t, []string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load = %v, want an error naming %s", name, err, tc.want)
		}
	}
}
