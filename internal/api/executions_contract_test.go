package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestExecutionsContract sends real requests to every /executions route
// and validates requests and answers against openapi.yaml, recorded events
// (NDJSON, which the validator cannot decode) against its RecordedEvent
// schema.
func TestExecutionsContract(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	g := newHistoryGateway(t, executions.RecordOptions{Workers: 1, MaxQueued: 3, MaxQueuedPerKey: 2})
	doc.Servers = openapi3.Servers{{URL: g.url}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	done := g.submit(t, g.alice, map[string]any{"code": guest(`console.log("x");`)})
	g.await(t, g.alice, done, execution.StatusFinished)
	g.history.Drain()
	queued := g.submit(t, g.alice, map[string]any{"code": guest("")})
	key := g.alice
	check := func(method, path, body string, status int) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, g.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("FindRoute(%s %s): %v", method, path, err)
		}
		input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(t.Context(), input); err != nil && status < 400 {
			t.Errorf("%s %s: request does not match openapi.yaml: %v", method, path, err)
		}
		sendValidated(t, input, method, g.url+path, body, status)
	}
	check("POST", "/executions", `{"code": "export default { fetch() { return new Response('x'); } }", "callbackUrl": "https://example.com/cb"}`, 202)
	check("POST", "/executions", `{"code": "export default { fetch() { return new Response('x'); } }"}`, 429) // alice's bound
	g.submit(t, g.bob, map[string]any{"code": guest("")})
	key = g.bob
	check("POST", "/executions", `{"code": "export default { fetch() { return new Response('x'); } }"}`, 503) // the queue's
	key = g.alice
	check("POST", "/executions", `{"code": 1, "callbackUrl": "ftp://x"}`, 422)
	check("GET", "/executions", "", 200)
	check("GET", "/executions?status=finished&limit=1", "", 200)
	check("GET", "/executions?limit=500", "", 422)
	check("GET", "/executions/"+done, "", 200)
	check("GET", "/executions/ex_nosuch", "", 404)
	check("DELETE", "/executions/"+queued, "", 200)
	check("DELETE", "/executions/"+done, "", 409)

	for _, tc := range []struct {
		schema, body string
		valid        bool
	}{
		{"ExecuteRequest", `{"code": "x"}`, true},
		{"ExecuteRequest", `{"code": "x", "callbackUrl": "https://example.com"}`, false},
		{"ExecuteRequest", `{"code": "x", "bogus": 1}`, false},
		{"SubmitRequest", `{"code": "x", "callbackUrl": "https://example.com"}`, true},
		{"SubmitRequest", `{"code": "x", "bogus": 1}`, false},
	} {
		var v any
		_ = json.Unmarshal([]byte(tc.body), &v)
		if err := doc.Components.Schemas[tc.schema].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); (err == nil) != tc.valid {
			t.Errorf("%s %s: %v, want valid = %v", tc.schema, tc.body, err, tc.valid)
		}
	}

	schema := doc.Components.Schemas["RecordedEvent"].Value
	resp, data := g.call(t, g.alice, http.MethodGet, "/executions/"+done+"/events", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Errorf("events = %q, want start, log, result", lines)
	}
	for _, line := range lines {
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("event %s does not match RecordedEvent: %v", line, err)
		}
	}
}
