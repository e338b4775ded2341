package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// run executes body (a POST /execute request) as key and returns the result.
func (f *attackFixture) run(t *testing.T, key string, body map[string]any) *execution.Result {
	t.Helper()
	resp, data := f.call(t, key, http.MethodPost, "/execute", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /execute = %d %s, want 200", resp.StatusCode, data)
	}
	var res execution.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// TestAttackCapabilityProxyHeaders: a capability allows GET under /api/,
// but many services take the method or the path from a header a proxy in
// front of them is trusted to set (X-HTTP-Method-Override, X-Original-URL)
// and the client's address from Forwarded and X-Forwarded-*. The shim is
// that proxy: a guest's header of that kind, in any spelling, must not
// reach the service, while those on the capability's list do
// (Idempotency-Key is on the default list).
func TestAttackCapabilityProxyHeaders(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	headers := []string{
		"X-HTTP-Method-Override", "x-http-method", "X-Method-Override", "X-HTTP-METHOD-OVERRIDE",
		"X-Original-URL", "x-rewrite-url", "X-Original-Method",
		"Forwarded", "X-Forwarded-For", "x-forwarded-host", "X-Forwarded-Proto", "X-Forwarded-Prefix", "X-Real-IP", "X-Client-IP",
	}
	for i, h := range headers {
		t.Run(h, func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  const r = await env.reader.fetch("probe/%d", { headers: { %q: "DELETE /admin 10.0.0.1", "Idempotency-Key": "t-%d" } });
  return new Response(String(r.status));
} }`, i, h, i)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
			wantSuccess(t, res)
			var got *http.Request
			for _, r := range f.service.requests() {
				if r.URL.Path == fmt.Sprintf("/api/probe/%d", i) {
					got = r
				}
			}
			if got == nil {
				t.Fatalf("the call never reached the service (guest answered %q)", res.Response.Body)
			}
			if v := got.Header.Get(h); v != "" {
				t.Errorf("the service got %s: %q from the guest", h, v)
			}
			if got.Method != http.MethodGet || got.Header.Get("Idempotency-Key") != fmt.Sprintf("t-%d", i) {
				t.Errorf("the service got %s with Idempotency-Key %q, want GET with the guest's own header", got.Method, got.Header.Get("Idempotency-Key"))
			}
		})
	}
}

// TestAttackAsyncCapabilities: POST /executions takes the same request as
// POST /execute, so its capabilities are checked against the caller's key
// before it is queued (a name that does not exist, one the key may not
// use, one named twice: 422 naming the field), and a queued execution's
// guest gets the bindings it asked for.
func TestAttackAsyncCapabilities(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	code := guest(`const r = await env.reader.fetch("async"); return new Response(r.status + " " + await r.text());`)
	for _, tt := range []struct {
		name  string
		caps  any
		field string
	}{
		{"another key's capability", []string{"scoped"}, "capabilities[0]"},
		{"no such capability", []string{"reader", "nope"}, "capabilities[1]"},
		{"named twice", []string{"reader", "reader"}, "capabilities[1]"},
		{"not a list", "reader", "capabilities"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := f.call(t, f.bob, http.MethodPost, "/executions", map[string]any{"code": code, "capabilities": tt.caps})
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"field":"`+tt.field+`"`) {
				t.Errorf("POST /executions = %d %s, want 422 naming %s", resp.StatusCode, data, tt.field)
			}
		})
	}
	id := f.submit(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
	rec := f.await(t, f.alice, id, "finished")
	if rec.Result == nil || !rec.Result.Success || rec.Result.Response == nil || rec.Result.Response.Body != "200 auth=[REDACTED]" {
		t.Fatalf("queued execution's result = %+v, want the capability's masked answer", rec.Result)
	}
	want := execution.Outgoing{Method: "GET", URL: "/api/async", Status: 200, Capability: "reader"}
	if len(rec.Result.Outbound) != 1 || rec.Result.Outbound[0] != want {
		t.Errorf("outbound = %+v, want %+v", rec.Result.Outbound, want)
	}
}

// TestAttackCapabilityHostByPlainFetch: a guest allowed every host cannot
// call a capability's service directly, past the binding's rules, by a
// plain fetch of its host however spelled; the service hears nothing.
func TestAttackCapabilityHostByPlainFetch(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	port := f.service.srv.URL[strings.LastIndex(f.service.srv.URL, ":")+1:]
	for _, host := range []string{"127.0.0.1:" + port, "127.0.0.1.:" + port, "[::ffff:127.0.0.1]:" + port, "2130706433:" + port} {
		t.Run(host, func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch() {
  try { const r = await fetch("http://%s/api/direct"); return new Response("reached " + r.status); } catch (e) { return new Response(e.message); }
} }`, host)
			res := f.run(t, f.alice, map[string]any{"code": code, "allowOutbound": true})
			wantSuccess(t, res)
			if !strings.Contains(res.Response.Body, "denied") || len(res.Outbound) != 1 || !res.Outbound[0].Denied {
				t.Errorf("guest fetch of %s: %q, outbound %+v; want it denied", host, res.Response.Body, res.Outbound)
			}
		})
	}
	res := f.run(t, f.alice, map[string]any{"allowOutbound": true, "code": `export default { async fetch() {
  try { await fetch("` + f.service.srv.URL + `/api/direct"); return new Response("reached"); } catch (e) { return new Response(e.message); } } }`})
	if !strings.Contains(res.Response.Body, "is a capability's host") {
		t.Errorf("guest fetch of the capability's own URL: %q, want it refused as a capability's host", res.Response.Body)
	}
	for _, r := range f.service.requests() {
		if r.URL.Path == "/api/direct" {
			t.Errorf("the service was reached by a plain fetch: %s %s", r.Method, r.URL)
		}
	}
}
