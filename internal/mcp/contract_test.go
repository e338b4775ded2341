package mcp_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	root "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
)

// TestContract checks /mcp's requests and answers against openapi.yaml: a
// session's life over the wire, and the refusals of the API and of the
// transport.
func TestContract(t *testing.T) {
	t.Parallel()
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	var sent map[string]string
	base := gateway(t, func(o *apitest.Gateway) {
		o.OpenAPI = root.OpenAPI
		sent = keys(t, o, map[string]auth.Key{"ci": {}})
	})
	doc, err := openapi3.NewLoader().LoadFromData(root.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	key := "Bearer " + sent["ci"]
	init := send(t, router, http.MethodPost, base, map[string]string{"Authorization": key}, initialize, 200)
	session := init.Header.Get("Mcp-Session-Id")
	in := map[string]string{"Authorization": key, "Mcp-Session-Id": session, "MCP-Protocol-Version": protocolVersion}
	send(t, router, http.MethodPost, base, in, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 202)
	send(t, router, http.MethodPost, base, in, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute","arguments":{"code":"x"}}}`, 200)
	send(t, router, http.MethodPost, base, map[string]string{}, initialize, 401)
	send(t, router, http.MethodGet, base, map[string]string{"Authorization": key}, "", 400)
	send(t, router, http.MethodDelete, base, in, "", 204)
	send(t, router, http.MethodPost, base, in, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, 404)
}

// send sends one request to /mcp, validating it and its answer against the
// spec, and checks the answer's status.
func send(t *testing.T, router routers.Router, method, base string, header map[string]string, body string, status int) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, base+"/mcp", strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("FindRoute(%s /mcp): %v", method, err)
	}
	input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(t.Context(), input); err != nil {
		t.Errorf("%s /mcp %s: request does not match openapi.yaml: %v", method, body, err)
	}
	again, _ := http.NewRequestWithContext(t.Context(), method, base+"/mcp", strings.NewReader(body))
	again.Header = req.Header.Clone()
	resp, err := http.DefaultClient.Do(again)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("%s /mcp %s = %d %s, want %d", method, body, resp.StatusCode, data, status)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(data)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s /mcp %s: answer does not match openapi.yaml: %v\n%s", method, body, err, data)
	}
	return resp
}
