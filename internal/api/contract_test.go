package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/internal/api"
)

// TestContract sends real requests to the running gateway and validates each
// request and response against openapi.yaml, so the spec cannot drift.
func TestContract(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	base := gatewayURL(t)
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		validRequest                          bool
	}{
		{"success", "POST", "/execute", "application/json", `{"code": "export default { fetch() { console.log('x'); return new Response('ok', {headers: {'x-a': 'b'}}); } }"}`, 200, true},
		{"every field", "POST", "/execute", "application/json", `{"modules": {"a.js": "export default { async fetch(r, env) { return new Response(await r.text()); } }", "d.json": "{}"}, "mainModule": "a.js", "env": {"A": 1, "B": {"c": true}}, "secrets": {"S": "x"}, "allowOutbound": false, "compatibilityDate": "2026-11-01", "compatibilityFlags": ["nodejs_compat"], "timeoutMs": 5000, "limits": {"cpuMs": 10, "subRequests": 2}, "request": {"method": "POST", "url": "/p", "headers": {"a": "b"}, "body": "aGk=", "bodyEncoding": "base64"}, "isolate": "fresh"}`, 200, true},
		{"guest failure", "POST", "/execute", "application/json", `{"code": "export default { fetch() { throw new Error('no'); } }"}`, 200, true},
		{"binary body", "POST", "/execute", "application/json", `{"code": "export default { fetch() { return new Response(new Uint8Array([255])); } }"}`, 200, true},
		{"malformed", "POST", "/execute", "application/json", `{"code": `, 400, false},
		{"wrong type", "POST", "/execute", "text/plain", `hello`, 415, false},
		{"not acceptable", "POST", "/execute", "application/json", `{"code": "x", "accept": "text/html"}`, 406, false},
		{"invalid", "POST", "/execute", "application/json", `{"code": 1, "timeoutMs": -4}`, 422, false},
		{"healthz", "GET", "/healthz", "", "", 200, true},
		{"readyz", "GET", "/readyz", "", "", 200, true},
		{"openapi", "GET", "/openapi.yaml", "", "", 200, true},
		{"metrics", "GET", "/metrics", "", "", 200, true},
		{"capabilities", "GET", "/capabilities", "", "", 200, true},
		{"unknown capability", "POST", "/execute", "application/json", `{"code": "x", "capabilities": ["nosuch"]}`, 422, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.status == http.StatusNotAcceptable {
				req.Header.Set("Accept", "text/html")
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("FindRoute: %v", err)
			}
			input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(t.Context(), input); (err == nil) != tt.validRequest {
				t.Errorf("ValidateRequest = %v, want valid = %v", err, tt.validRequest)
			}
			sendValidated(t, input, tt.method, base+tt.path, tt.body, tt.status)
		})
	}
}

func validateResponse(t *testing.T, input *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	t.Helper()
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("response does not match openapi.yaml: %v\n%s", err, body)
	}
}

// sendValidated sends the request input validated again, fresh (validation
// may consume and rewrite the body), and checks its status and that the
// response matches openapi.yaml.
func sendValidated(t *testing.T, input *openapi3filter.RequestValidationInput, method, url, body string, status int) {
	t.Helper()
	send, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	send.Header = input.Request.Header.Clone()
	resp, data := do(t, send)
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", resp.StatusCode, status, data)
	}
	validateResponse(t, input, resp, data)
}

// streamEventSchema is the StreamEvent schema of openapi.yaml.
func streamEventSchema(t *testing.T) *openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas["StreamEvent"].Value
}

// TestStreamContract validates every event of real NDJSON and SSE streams
// against the StreamEvent schema of openapi.yaml.
func TestStreamContract(t *testing.T) {
	t.Parallel()
	schema := streamEventSchema(t)
	programs := []string{
		`export default { fetch() { console.log("a", {b: 1}); console.error("c"); return new Response(new Uint8Array([255])); } }`,
		`export default { fetch() { console.log("y".repeat(70000)); throw new Error("no"); } }`,
		`export default { fetch( { } }`,
	}
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		for i, code := range programs {
			t.Run(fmt.Sprintf("%s %d", accept, i), func(t *testing.T) {
				t.Parallel()
				got := openStream(t, gatewayURL(t), accept, map[string]any{"code": code}).all(true)
				for _, a := range got {
					var value any
					if err := json.Unmarshal([]byte(a.raw), &value); err != nil {
						t.Fatal(err)
					}
					if err := schema.VisitJSON(value); err != nil {
						t.Errorf("event %s does not match StreamEvent: %v", a.raw, err)
					}
				}
			})
		}
	}
	// And a result that carries logs must not validate.
	bad := map[string]any{"type": "result", "id": "x", "success": true, "stdout": "", "stderr": "", "truncated": false, "outbound": []any{}, "warm": false, "durationMs": 1.0, "logs": []any{}}
	if err := schema.VisitJSON(bad); err == nil {
		t.Error("a result event with logs validates against StreamEvent; want the schema to forbid logs")
	}
}

// TestAuthContract validates 401 and 429 answers against openapi.yaml.
func TestAuthContract(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	f := newAuthFixture(t)
	doc.Servers = openapi3.Servers{{URL: f.url}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	check := func(authorization string, want int) {
		t.Helper()
		body := `{"code": "export default { fetch() { return new Response('ok'); } }"}`
		req, _ := http.NewRequest(http.MethodPost, f.url+"/execute", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		sendValidated(t, input, http.MethodPost, f.url+"/execute", body, want)
	}
	check("", 401)
	check("Bearer "+f.limited, 200)
	check("Bearer "+f.limited, 200)
	check("Bearer "+f.limited, 429)
}

// TestUnavailableContract validates 503 answers against openapi.yaml.
func TestUnavailableContract(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), notReady{}, apitest.Gateway{Options: api.Options{MaxRequestBytes: 1 << 10}, Limits: testLimits}))
	defer srv.Close()
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"POST", "/execute", `{"code": "export default {}"}`},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("%s %s = %d", tc.method, tc.path, resp.StatusCode)
		}
		input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		validateResponse(t, input, resp, data)
	}
}
