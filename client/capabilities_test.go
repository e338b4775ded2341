package client_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestCapabilities lists a gateway's capabilities and asks for one: the
// guest has its binding; a name the gateway does not have is a *Error
// naming the field.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	opts := testOptions
	opts.Capabilities = executions.Capabilities{
		"inventory": {URL: "http://10.0.3.7:9000/api/", Headers: map[string]string{"authorization": "Bearer x"}, Methods: []string{"GET"}, TimeoutMs: 1000, MaxCalls: 5},
	}
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, opts))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL)
	list, err := c.Capabilities(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := execution.CapabilityInfo{Name: "inventory", Methods: []string{"GET"}, BasePath: "/api/", MaxCalls: 5, TimeoutMs: 1000}
	if len(list) != 1 || list[0].Name != want.Name || list[0].BasePath != want.BasePath || list[0].MaxCalls != 5 {
		t.Errorf("Capabilities() = %+v, want [%+v]", list, want)
	}
	res, err := c.Execute(t.Context(), &execution.Request{
		Code:         `export default { fetch(req, env) { return new Response(typeof env.inventory.fetch); } }`,
		Capabilities: []string{"inventory"},
	})
	if err != nil || !res.Success || res.Response.Body != "function" {
		t.Fatalf("Execute = %+v, %v, want the binding there", res, err)
	}
	_, err = c.Execute(t.Context(), &execution.Request{Code: `export default { fetch() { return new Response("x"); } }`, Capabilities: []string{"nosuch"}})
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.StatusCode != 422 || len(gwErr.Errors) != 1 || gwErr.Errors[0].Field != "capabilities[0]" {
		t.Errorf("Execute with an unknown capability = %v, want a 422 naming capabilities[0]", err)
	}
}
