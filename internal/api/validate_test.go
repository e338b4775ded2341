package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api"
)

const okCode = `"export default { fetch() { return new Response('ok'); } }"`

func TestBadRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
		fields      []string // field:code pairs expected in errors, for 422
	}{
		// 415: wrong media type.
		{"no content type", "", `{"code": ` + okCode + `}`, 415, "unsupported_media_type", nil},
		{"text/plain", "text/plain", `{"code": ` + okCode + `}`, 415, "unsupported_media_type", nil},
		{"form", "application/x-www-form-urlencoded", `code=x`, 415, "unsupported_media_type", nil},
		// 400: not one JSON object.
		{"empty body", "application/json", ``, 400, "malformed_json", nil},
		{"truncated json", "application/json", `{"code": "x"`, 400, "malformed_json", nil},
		{"not json", "application/json", `code: x`, 400, "malformed_json", nil},
		{"trailing data", "application/json", `{"code": ` + okCode + `} {"more": 1}`, 400, "malformed_json", nil},
		{"trailing garbage", "application/json", `{"code": ` + okCode + `} x`, 400, "malformed_json", nil},
		{"array", "application/json", `[1, 2]`, 400, "malformed_json", nil},
		{"string", "application/json", `"code"`, 400, "malformed_json", nil},
		{"null", "application/json", `null`, 400, "malformed_json", nil},
		// 413: too large.
		{"too large", "application/json", `{"code": "` + strings.Repeat("x", testMaxBody) + `"}`, 413, "body_too_large", nil},
		// 422: invalid fields, all reported at once.
		{"neither code nor modules", "application/json", `{}`, 422, "invalid_request", []string{"code:required"}},
		{"both code and modules", "application/json", `{"code": ` + okCode + `, "modules": {"a.js": ""}}`, 422, "invalid_request", []string{"code:conflict"}},
		{"code not a string", "application/json", `{"code": 42}`, 422, "invalid_request", []string{"code:wrong_type"}},
		{"code null", "application/json", `{"code": null}`, 422, "invalid_request", []string{"code:wrong_type"}},
		{"empty code", "application/json", `{"code": "  "}`, 422, "invalid_request", []string{"code:invalid"}},
		{"unknown field", "application/json", `{"code": ` + okCode + `, "timeout": 5}`, 422, "invalid_request", []string{"timeout:unknown_field"}},
		{"bad language", "application/json", `{"code": ` + okCode + `, "language": "python"}`, 422, "invalid_request", []string{"language:invalid"}},
		{"modules not an object", "application/json", `{"modules": ["a.js"]}`, 422, "invalid_request", []string{"modules:wrong_type"}},
		{"modules empty", "application/json", `{"modules": {}}`, 422, "invalid_request", []string{"modules:required"}},
		{"module source not a string", "application/json", `{"modules": {"a.js": 1}}`, 422, "invalid_request", []string{"modules:wrong_type"}},
		{"absolute module name", "application/json", `{"modules": {"/etc/a.js": ""}}`, 422, "invalid_request", []string{"modules./etc/a.js:invalid"}},
		{"parent module name", "application/json", `{"modules": {"../a.js": ""}}`, 422, "invalid_request", []string{"modules.../a.js:invalid"}},
		{"dot-slash module name", "application/json", `{"modules": {"./a.js": ""}}`, 422, "invalid_request", []string{"modules../a.js:invalid"}},
		{"reserved module name", "application/json", `{"modules": {"__dw_wrapper.js": ""}}`, 422, "invalid_request", []string{"modules.__dw_wrapper.js:invalid"}},
		{"reserved module name, other case", "application/json", `{"modules": {"__DW_Options.js": ""}}`, 422, "invalid_request", []string{"modules.__DW_Options.js:invalid"}},
		{"reserved module folder", "application/json", `{"modules": {"__dw_x/y.js": ""}}`, 422, "invalid_request", []string{"modules.__dw_x/y.js:invalid"}},
		{"reserved module deeper", "application/json", `{"modules": {"lib/__Dw_options.js": ""}}`, 422, "invalid_request", []string{"modules.lib/__Dw_options.js:invalid"}},
		{"unknown module extension", "application/json", `{"modules": {"a.js": "", "b.exe": ""}}`, 422, "invalid_request", []string{"modules.b.exe:invalid"}},
		{"invalid json module", "application/json", `{"modules": {"a.js": "", "d.json": "{nope"}}`, 422, "invalid_request", []string{"modules.d.json:invalid"}},
		{"no script module", "application/json", `{"modules": {"d.json": "{}"}}`, 422, "invalid_request", []string{"modules:invalid"}},
		{"mainModule missing", "application/json", `{"modules": {"a.js": ""}, "mainModule": "b.js"}`, 422, "invalid_request", []string{"mainModule:invalid"}},
		{"mainModule not a script", "application/json", `{"modules": {"a.js": "", "d.txt": ""}, "mainModule": "d.txt"}`, 422, "invalid_request", []string{"mainModule:invalid"}},
		{"mainModule with code", "application/json", `{"code": ` + okCode + `, "mainModule": "a.js"}`, 422, "invalid_request", []string{"mainModule:conflict"}},
		{"env not an object", "application/json", `{"code": ` + okCode + `, "env": "A=1"}`, 422, "invalid_request", []string{"env:wrong_type"}},
		{"env null value", "application/json", `{"code": ` + okCode + `, "env": {"A": null}}`, 422, "invalid_request", []string{"env.A:wrong_type"}},
		{"secret not a string", "application/json", `{"code": ` + okCode + `, "secrets": {"K": 1}}`, 422, "invalid_request", []string{"secrets:wrong_type"}},
		{"env and secrets clash", "application/json", `{"code": ` + okCode + `, "env": {"K": "a"}, "secrets": {"K": "b"}}`, 422, "invalid_request", []string{"secrets.K:conflict"}},
		{"allowOutbound a number", "application/json", `{"code": ` + okCode + `, "allowOutbound": 1}`, 422, "invalid_request", []string{"allowOutbound:wrong_type"}},
		{"allowOutbound bad host", "application/json", `{"code": ` + okCode + `, "allowOutbound": ["ex ample.com"]}`, 422, "invalid_request", []string{"allowOutbound[0]:invalid"}},
		{"allowOutbound localhost", "application/json", `{"code": ` + okCode + `, "allowOutbound": ["api.example.com", "localhost", "127.0.0.1", "*.internal"]}`, 422, "invalid_request", []string{"allowOutbound[1]:invalid", "allowOutbound[2]:invalid", "allowOutbound[3]:invalid"}},
		{"limit as string", "application/json", `{"code": ` + okCode + `, "limits": {"cpuMs": "5"}}`, 422, "invalid_request", []string{"limits.cpuMs:wrong_type"}},
		{"unparseable date", "application/json", `{"code": ` + okCode + `, "compatibilityDate": "yesterday"}`, 422, "invalid_request", []string{"compatibilityDate:invalid"}},
		{"impossible date", "application/json", `{"code": ` + okCode + `, "compatibilityDate": "2024-02-30"}`, 422, "invalid_request", []string{"compatibilityDate:invalid"}},
		{"future date", "application/json", `{"code": ` + okCode + `, "compatibilityDate": "2099-01-01"}`, 422, "invalid_request", []string{"compatibilityDate:out_of_range"}},
		{"date newer than the runtime", "application/json", `{"code": ` + okCode + `, "compatibilityDate": "2026-11-25"}`, 422, "invalid_request", []string{"compatibilityDate:rejected_by_runtime"}},
		{"flags not a list", "application/json", `{"code": ` + okCode + `, "compatibilityFlags": "nodejs_compat"}`, 422, "invalid_request", []string{"compatibilityFlags:wrong_type"}},
		{"bad flag name", "application/json", `{"code": ` + okCode + `, "compatibilityFlags": ["Node JS"]}`, 422, "invalid_request", []string{"compatibilityFlags[0]:invalid"}},
		{"unknown flag", "application/json", `{"code": ` + okCode + `, "compatibilityFlags": ["no_such_flag_here"]}`, 422, "invalid_request", []string{"compatibilityFlags:rejected_by_runtime"}},
		{"contradictory flags", "application/json", `{"code": ` + okCode + `, "compatibilityFlags": ["nodejs_compat", "no_nodejs_compat"]}`, 422, "invalid_request", []string{"compatibilityFlags:rejected_by_runtime"}},
		{"negative timeout", "application/json", `{"code": ` + okCode + `, "timeoutMs": -1}`, 422, "invalid_request", []string{"timeoutMs:out_of_range"}},
		{"zero timeout", "application/json", `{"code": ` + okCode + `, "timeoutMs": 0}`, 422, "invalid_request", []string{"timeoutMs:out_of_range"}},
		{"timeout over maximum", "application/json", `{"code": ` + okCode + `, "timeoutMs": 3600000}`, 422, "invalid_request", []string{"timeoutMs:out_of_range"}},
		{"fractional timeout", "application/json", `{"code": ` + okCode + `, "timeoutMs": 1.5}`, 422, "invalid_request", []string{"timeoutMs:wrong_type"}},
		{"timeout as string", "application/json", `{"code": ` + okCode + `, "timeoutMs": "1000"}`, 422, "invalid_request", []string{"timeoutMs:wrong_type"}},
		{"negative cpu limit", "application/json", `{"code": ` + okCode + `, "limits": {"cpuMs": -5}}`, 422, "invalid_request", []string{"limits.cpuMs:out_of_range"}},
		{"unknown limit", "application/json", `{"code": ` + okCode + `, "limits": {"memoryMb": 5}}`, 422, "invalid_request", []string{"limits.memoryMb:unknown_field"}},
		{"request not an object", "application/json", `{"code": ` + okCode + `, "request": "GET /"}`, 422, "invalid_request", []string{"request:wrong_type"}},
		{"bad method", "application/json", `{"code": ` + okCode + `, "request": {"method": "GE T"}}`, 422, "invalid_request", []string{"request.method:invalid"}},
		{"bad url", "application/json", `{"code": ` + okCode + `, "request": {"url": "ftp://x/"}}`, 422, "invalid_request", []string{"request.url:invalid"}},
		{"bad header name", "application/json", `{"code": ` + okCode + `, "request": {"headers": {"bad header": "x"}}}`, 422, "invalid_request", []string{"request.headers:invalid"}},
		{"header value with newline", "application/json", `{"code": ` + okCode + `, "request": {"headers": {"X-A": "a\r\nb: c"}}}`, 422, "invalid_request", []string{"request.headers.X-A:invalid"}},
		{"bad base64", "application/json", `{"code": ` + okCode + `, "request": {"method": "POST", "body": "***", "bodyEncoding": "base64"}}`, 422, "invalid_request", []string{"request.body:invalid"}},
		{"bad body encoding", "application/json", `{"code": ` + okCode + `, "request": {"method": "POST", "body": "x", "bodyEncoding": "hex"}}`, 422, "invalid_request", []string{"request.bodyEncoding:invalid"}},
		{"body on GET", "application/json", `{"code": ` + okCode + `, "request": {"body": "x"}}`, 422, "invalid_request", []string{"request.body:conflict"}},
		{"unknown request field", "application/json", `{"code": ` + okCode + `, "request": {"path": "/"}}`, 422, "invalid_request", []string{"request.path:unknown_field"}},
		{"bad isolate", "application/json", `{"code": ` + okCode + `, "isolate": "shared"}`, 422, "invalid_request", []string{"isolate:invalid"}},
		{"every problem at once", "application/json",
			`{"code": 1, "env": [], "timeoutMs": -1, "isolate": "x", "compatibilityDate": "2024-13-01", "extra": true}`,
			422, "invalid_request", []string{"extra:unknown_field", "code:wrong_type", "env:wrong_type", "compatibilityDate:invalid", "timeoutMs:out_of_range", "isolate:invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := post(t, "/execute", tt.contentType, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, data)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			var p api.Problem
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatalf("decode problem: %v: %s", err, data)
			}
			if p.Code != tt.code || p.Status != tt.status || p.Title == "" || p.Detail == "" || !strings.HasSuffix(p.Type, "#"+tt.code) {
				t.Errorf("problem = %+v, want code %s status %d with type, title and detail", p, tt.code, tt.status)
			}
			// A body refused before it was read as a request names the
			// request; one the service refused, the execution it would
			// have been.
			want := resp.Header.Get("X-Execution-Id")
			if want == "" {
				want = resp.Header.Get("X-Request-Id")
			}
			if p.Instance == "" || p.Instance != want {
				t.Errorf("instance = %q, X-Execution-Id = %q, X-Request-Id = %q; want the first id set", p.Instance, resp.Header.Get("X-Execution-Id"), resp.Header.Get("X-Request-Id"))
			}
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field+":"+e.Code)
				if e.Detail == "" {
					t.Errorf("problem for %s has no detail", e.Field)
				}
			}
			for _, want := range tt.fields {
				if !slices.Contains(got, want) {
					t.Errorf("errors = %v, want %s among them", got, want)
				}
			}
			if tt.status == http.StatusUnprocessableEntity && len(got) != len(tt.fields) {
				t.Errorf("errors = %v, want exactly %v", got, tt.fields)
			}
		})
	}
}
