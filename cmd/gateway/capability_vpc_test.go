package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestServeVPCCapabilityLocally: a capability configured with a Workers
// VPC service id is reached on the local backend too, through the binding
// of the name it has on Cloudflare (VPC_ledger), beside one reached through
// the capability network; the shim refuses a VPC capability's call without
// that binding, so the answer shows the gateway made it.
func TestServeVPCCapabilityLocally(t *testing.T) {
	service := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, name+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		}))
		t.Cleanup(s.Close)
		return s
	}
	ledger, orders := service("ledger"), service("orders")
	caps, _ := json.Marshal(map[string]any{
		"ledger": map[string]any{"url": ledger.URL + "/v1/", "headers": map[string]string{"Authorization": "Bearer ledger-marker"},
			"cloudflare": map[string]string{"vpc_service_id": "0199295b-b3ac-7760-8246-bca40877b3e9"}},
		"orders": map[string]any{"url": orders.URL + "/api/"},
	})
	g := startServing(t, map[string]string{"GATEWAY_CAPABILITIES": string(caps)})
	defer g.stop(t)
	body := `{"code": "const a = await (await env.ledger.fetch('entries')).text(); const b = await (await env.orders.fetch('o/1')).text(); return a + ' | ' + b;", "capabilities": ["ledger", "orders"]}`
	resp, err := http.Post(g.base+"/execute", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res execution.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /execute = %d, %v", resp.StatusCode, err)
	}
	want := `"ledger /v1/entries [REDACTED] | orders /api/o/1 "`
	if !res.Success || string(res.ReturnValue) != want {
		t.Errorf("result %+v (return %s), want %s", res.Error, res.ReturnValue, want)
	}
}
