package api_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
)

// TestCapabilityCredentialsStayOutside calls a capability whose service
// echoes its Authorization header: the header reaches the service, and the
// guest sees it nowhere: not in env, not on the binding, not in the echo
// (the guest also prints what it got reversed, which no output masking
// would catch, so what is seen is what the guest got).
func TestCapabilityCredentialsStayOutside(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	code := `
const rev = (s) => [...String(s)].reverse().join("");
export default { async fetch(req, env) {
  const b = env.inventory;
  const looks = [JSON.stringify(env), Object.keys(b).join(","), String(b), JSON.stringify(b), Object.getOwnPropertyNames(b).join(",")];
  for (const name of ["ctx", "env", "props", "headers"]) {
    try { looks.push(name + "=" + JSON.stringify(await b[name])); } catch (e) { looks.push(name + " threw " + e.message); }
  }
  try { looks.push("raw ctx=" + JSON.stringify(await env.inventory.fetch.ctx)); } catch (e) { looks.push("raw threw"); }
  const r = await b.fetch("items/1", { headers: { "Authorization": "Bearer guest-own" } });
  const text = await r.text();
  const hdrs = JSON.stringify([...r.headers]);
  console.log(text);
  console.log(r.headers.get("x-echo-auth"));
  console.log(rev(text), rev(hdrs), rev(looks.join("|")));
  return new Response(text, { headers: { "x-got": r.headers.get("x-echo-auth") + " " + r.headers.get("x-echo-tenant") } });
} }`
	res := f.run(t, code, []string{"inventory"}, nil)
	wantSuccess(t, res)
	calls := f.service.calls()
	i := slices.IndexFunc(calls, func(c capCall) bool { return c.Path == "/api/items/1" })
	if i < 0 || calls[i].Authorization != "Bearer "+capToken || calls[i].Tenant != capTenant {
		t.Fatalf("service saw %+v, want /api/items/1 with the configured headers (over the guest's own)", calls)
	}
	all, _ := json.Marshal(res)
	noCredentials(t, "the result", string(all))
	if !strings.Contains(res.Stdout, "[REDACTED]") || !strings.Contains(res.Response.Headers["x-got"], "[REDACTED]") {
		t.Errorf("stdout %q, x-got %q: want the echoed values masked", res.Stdout, res.Response.Headers["x-got"])
	}
	noCredentials(t, "the gateway's log", f.logs.String())
	if !strings.Contains(f.logs.String(), `"capabilities":["inventory"]`) {
		t.Error("no audit line names the capability")
	}
	want := execution.Outgoing{Method: "GET", URL: "/api/items/1", Status: 200, Capability: "inventory"}
	if !slices.Contains(res.Outbound, want) {
		t.Errorf("outbound = %+v, want %+v", res.Outbound, want)
	}
}

// TestCapabilityMasksAStreamedEcho: an answer too long to read whole, sent
// in chunks that split the echoed header, reaches the guest with every echo
// masked.
func TestCapabilityMasksAStreamedEcho(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	res := f.run(t, `export default { async fetch(req, env) {
  const text = await (await env.inventory.fetch("big")).text();
  return new Response(text.split("[REDACTED]").length - 1 + " " + text.length + " " + [...text].reverse().join(""));
} }`, []string{"inventory"}, nil)
	wantSuccess(t, res)
	noCredentials(t, "the guest's answer", res.Response.Body)
	want := fmt.Sprintf("%d %d ", bigEchoes, bigEchoes*(3000+len("[REDACTED]")))
	if !strings.HasPrefix(res.Response.Body, want) {
		t.Errorf("guest saw %.40q, want %q: every echo masked", res.Response.Body, want)
	}
}

// TestCapabilityURLs resolves relative and absolute URLs against the base
// and refuses every spelling of a URL outside it: dot segments, encoded
// slashes, dots and backslashes, another host, scheme or port, user info.
// Every call is recorded; none outside /api/ reaches the service.
func TestCapabilityURLs(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	origin := f.service.srv.URL
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(origin, "http://"))
	allowed := map[string]string{
		"items/2":                               "/api/items/2",
		"./items/3?q=1":                         "/api/items/3?q=1",
		"/api/items/4":                          "/api/items/4",
		origin + "/api/items/5":                 "/api/items/5",
		"items/6/../7":                          "/api/items/7",
		"http://capability.invalid/api/items/8": "/api/items/8",
		// User info before the service's own host goes nowhere: the
		// runtime drops it from the request, the call goes to the base.
		"http://evil@" + host + ":" + port + "/api/items/9": "/api/items/9",
	}
	refused := []string{
		"../admin", "/admin", "/api", "..", "../api2/x", "/api2/x", "items/../../admin",
		"items/..%2f..%2fadmin", "items%2F..%2F..%2Fadmin", "%2e%2e/admin", "items/%2E%2E/%2e%2e/admin",
		"..\\admin", "items\\..\\..\\admin", "items/%5c..%5cadmin", "items/%252e%252e/admin", "x%00y",
		origin + "/admin", origin + "/api", "https://" + host + ":" + port + "/api/x", "http://localhost:" + port + "/api/x",
		"http://" + host + ":1/api/x", "http://example.com/api/x", "//example.com/api/x",
		"http://capability.invalid//example.com/api/x", "http://capability.invalid//",
		"http://" + host + ":" + port + "@example.com/api/x", "http://" + host + "@example.com/api/x",
	}
	inputs := slices.Sorted(func(yield func(string) bool) {
		for k := range allowed {
			yield(k)
		}
	})
	inputs = append(inputs, refused...)
	code := fmt.Sprintf(`
export default { async fetch(req, env) {
  const out = [];
  for (const u of %s) {
    try { const r = await env.inventory.fetch(u); out.push("ok " + r.status + " " + (await r.text()).split(" ")[0]); }
    catch (e) { out.push("refused " + e.message); }
  }
  return new Response(out.join("\n"));
} }`, jsArray(inputs))
	before := f.service.hitsOutside()
	res := f.run(t, code, []string{"inventory"}, nil)
	wantSuccess(t, res)
	lines := strings.Split(res.Response.Body, "\n")
	if len(lines) != len(inputs) || len(res.Outbound) != len(inputs) {
		t.Fatalf("%d lines, %d records for %d inputs:\n%s\n%+v", len(lines), len(res.Outbound), len(inputs), res.Response.Body, res.Outbound)
	}
	for i, in := range inputs {
		rec := res.Outbound[i]
		if path, ok := allowed[in]; ok {
			if lines[i] != "ok 200 path="+path || rec.URL != path || rec.Denied || rec.Status != 200 || rec.Capability != "inventory" {
				t.Errorf("fetch(%q) = %q, record %+v, want ok at %s", in, lines[i], rec, path)
			}
			continue
		}
		if !strings.HasPrefix(lines[i], "refused capability inventory: refused") || !rec.Denied || rec.Status != 0 || rec.Capability != "inventory" {
			t.Errorf("fetch(%q) = %q, record %+v, want refused and recorded denied", in, lines[i], rec)
		}
	}
	if n := f.service.hitsOutside() - before; n != 0 {
		t.Errorf("%d calls reached the service outside /api/", n)
	}
}

// TestCapabilityMethodsAndCalls refuses methods not allowed, passes a
// POST's body, and refuses calls past max_calls.
func TestCapabilityMethodsAndCalls(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	code := `
export default { async fetch(req, env) {
  const out = [];
  const call = async (b, u, init) => {
    try { const r = await b.fetch(u, init); out.push(r.status + " " + await r.text()); }
    catch (e) { out.push("refused " + e.message); }
  };
  await call(env.inventory, "orders", { method: "POST", body: "qty=2" });
  for (const method of ["DELETE", "PUT", "PATCH", "patch", "OPTIONS"]) await call(env.inventory, "orders", { method });
  for (let i = 0; i < 5; i++) await call(env.limited, "count/" + i);
  return new Response(out.join("\n"));
} }`
	res := f.run(t, code, []string{"inventory", "limited"}, nil)
	wantSuccess(t, res)
	lines := strings.Split(res.Response.Body, "\n")
	if len(lines) != 11 {
		t.Fatalf("body = %q, want 11 lines", res.Response.Body)
	}
	if !strings.HasPrefix(lines[0], "200 path=/api/orders") || !strings.HasSuffix(lines[0], "body=qty=2") {
		t.Errorf("POST = %q, want its body passed on", lines[0])
	}
	for _, line := range lines[1:6] {
		if !strings.Contains(line, "refused capability inventory: refused: method") {
			t.Errorf("got %q, want the method refused", line)
		}
	}
	for i, line := range lines[6:] {
		want := "200 path=/api/count/"
		if i >= 3 {
			want = "refused capability limited: refused: more than 3 calls"
		}
		if !strings.HasPrefix(line, want) {
			t.Errorf("call %d of limited = %q, want %q", i, line, want)
		}
	}
	denied := 0
	for _, o := range res.Outbound {
		if o.Denied {
			denied++
		}
	}
	if len(res.Outbound) != 11 || denied != 7 {
		t.Errorf("outbound = %+v, want 11 records, 7 denied", res.Outbound)
	}
	for _, c := range f.service.calls() {
		if strings.HasPrefix(c.Path, "/api/count/") && c.Path >= "/api/count/3" {
			t.Errorf("a call past max_calls reached the service: %+v", c)
		}
		if c.Path == "/api/orders" && c.Method != "POST" {
			t.Errorf("a refused method reached the service: %+v", c)
		}
	}
}

// TestCapabilityTimeout ends a call its service does not answer within the
// capability's timeout; the execution goes on.
func TestCapabilityTimeout(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	res := f.run(t, `export default { async fetch(req, env) {
  try { await env.slow.fetch("slow"); return new Response("answered"); } catch (e) { return new Response(e.message); }
} }`, []string{"slow"}, nil)
	// The execution went on after the call: cut at the call's timeout,
	// not the execution's.
	wantSuccess(t, res)
	if !strings.Contains(res.Response.Body, "no answer within 300 ms") {
		t.Errorf("body = %q, want the call timed out", res.Response.Body)
	}
	if len(res.Outbound) != 1 || res.Outbound[0].Status != 0 || res.Outbound[0].Denied || res.Outbound[0].Capability != "slow" {
		t.Errorf("outbound = %+v, want one failed call of slow", res.Outbound)
	}
}

// TestCapabilityRequestValidation refuses, with 422 naming the field and
// before anything runs, a capability that does not exist, one the caller's
// key may not use, one named twice and one that clashes with env.
func TestCapabilityRequestValidation(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	tests := []struct {
		name  string
		key   string
		body  map[string]any
		field string
	}{
		{"unknown", f.ci, map[string]any{"capabilities": []string{"nosuch"}}, "capabilities[0]"},
		{"not this key's", f.other, map[string]any{"capabilities": []string{"inventory", "scoped"}}, "capabilities[1]"},
		{"twice", f.ci, map[string]any{"capabilities": []string{"inventory", "inventory"}}, "capabilities[1]"},
		{"clash with env", f.ci, map[string]any{"capabilities": []string{"inventory"}, "env": map[string]any{"inventory": "x"}}, "capabilities[0]"},
		{"not a list", f.ci, map[string]any{"capabilities": "inventory"}, "capabilities"},
		{"with other problems", f.ci, map[string]any{"capabilities": []string{"nosuch"}, "timeoutMs": -1}, "capabilities[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["code"] = `export default { async fetch(req, env) { await env.inventory.fetch("items/never"); return new Response("ran"); } }`
			status, data := f.call(t, tt.key, http.MethodPost, "/execute", tt.body)
			var p api.Problem
			_ = json.Unmarshal(data, &p)
			if status != http.StatusUnprocessableEntity || !slices.ContainsFunc(p.Errors, func(e api.FieldProblem) bool { return e.Field == tt.field }) {
				t.Errorf("POST /execute = %d %s, want 422 naming %s", status, data, tt.field)
			}
		})
	}
	if n := f.service.hits("/api/items/never"); n != 0 {
		t.Errorf("refused requests made %d calls", n)
	}
	// The key that may use it runs the same request.
	res := f.run(t, `export default { async fetch(req, env) { return env.scoped.fetch("items/scoped"); } }`, []string{"scoped"}, nil)
	wantSuccess(t, res)
}

// TestCapabilityList lists, for each key, the capabilities it may use:
// names, methods and base path, never headers or the host.
func TestCapabilityList(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	for key, want := range map[string][]string{f.ci: {"bench", "inventory", "limited", "open", "scoped", "slow"}, f.other: {"bench", "inventory", "limited", "open", "slow"}} {
		status, data := f.call(t, key, http.MethodGet, "/capabilities", nil)
		var list struct {
			Capabilities []struct {
				Name     string   `json:"name"`
				Methods  []string `json:"methods"`
				BasePath string   `json:"basePath"`

				ForwardHeaders []string `json:"forwardHeaders"`
				MaxAnswerBytes int64    `json:"maxAnswerBytes"`
			} `json:"capabilities"`
		}
		if err := json.Unmarshal(data, &list); err != nil || status != 200 {
			t.Fatalf("GET /capabilities = %d %s", status, data)
		}
		matchesSchema(t, "CapabilityList", data)
		var names []string
		for _, c := range list.Capabilities {
			names = append(names, c.Name)
			if c.BasePath != "/api/" || len(c.Methods) == 0 {
				t.Errorf("capability %+v, want base path /api/ and its methods", c)
			}
			if c.Name == "open" && (!slices.Equal(c.ForwardHeaders, []string{"accept"}) || c.MaxAnswerBytes != 64<<20) {
				t.Errorf("capability %+v, want the headers it forwards and its answer bound", c)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("GET /capabilities lists %v, want %v", names, want)
		}
		host := strings.TrimPrefix(f.service.srv.URL, "http://")
		if strings.Contains(string(data), capToken) || strings.Contains(string(data), host) || strings.Contains(strings.ToLower(string(data)), "authorization") {
			t.Errorf("GET /capabilities shows headers or the host: %s", data)
		}
	}
	status, _ := f.call(t, "wrong-key", http.MethodGet, "/capabilities", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("GET /capabilities with a bad key = %d, want 401", status)
	}
}

// TestCapabilityOnlyThroughTheBinding: a guest's own fetch to the service's
// address stays refused, with and without allowOutbound, with and without
// the capability; and a guest that did not ask has no binding.
func TestCapabilityOnlyThroughTheBinding(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	direct := fmt.Sprintf(`export default { async fetch(req, env) {
  const out = [typeof env.inventory, JSON.stringify(Object.keys(env))];
  for (const u of %s) {
    try { const r = await fetch(u); out.push("REACHED " + r.status); } catch (e) { out.push("refused"); }
  }
  return new Response(out.join("\n"));
} }`, jsArray([]string{f.service.srv.URL + "/api/direct", strings.Replace(f.service.srv.URL, "127.0.0.1", "localhost", 1) + "/api/direct"}))
	for _, tt := range []struct {
		name  string
		caps  []string
		allow any
		typ   string
	}{
		{"no capability, no network", nil, false, "undefined"},
		{"no capability, allowOutbound", nil, true, "undefined"},
		{"capability, no network", []string{"inventory"}, false, "object"},
		{"capability, allowOutbound", []string{"inventory"}, true, "object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := f.run(t, direct, tt.caps, map[string]any{"allowOutbound": tt.allow})
			wantSuccess(t, res)
			lines := strings.Split(res.Response.Body, "\n")
			if lines[0] != tt.typ || strings.Contains(res.Response.Body, "REACHED") {
				t.Errorf("guest saw %q, want env.inventory %s and every direct fetch refused", res.Response.Body, tt.typ)
			}
			if tt.caps == nil && lines[1] != "[]" {
				t.Errorf("env keys = %s, want none", lines[1])
			}
		})
	}
	if n := f.service.hits("/api/direct"); n != 0 {
		t.Errorf("direct fetches reached the service %d times", n)
	}
}

// TestCapabilityInWarmIsolate runs a guest in a reused isolate twice: the
// binding works in both, and max_calls counts each execution afresh.
func TestCapabilityInWarmIsolate(t *testing.T) {
	t.Parallel()
	f := capabilityGateway(t)
	code := `export default { async fetch(req, env) {
  const out = [];
  for (let i = 0; i < 4; i++) {
    try { out.push((await env.limited.fetch("warm/" + i)).status); } catch (e) { out.push("refused"); }
  }
  return new Response(out.join(","));
} }`
	for i, wantWarm := range []bool{false, true} {
		res := f.run(t, code, []string{"limited"}, map[string]any{"isolate": "reuse"})
		wantSuccess(t, res)
		if res.Response.Body != "200,200,200,refused" || res.Warm != wantWarm {
			t.Errorf("run %d: body %q warm %v, want 200,200,200,refused and warm %v", i, res.Response.Body, res.Warm, wantWarm)
		}
		if len(res.Outbound) != 4 || !res.Outbound[3].Denied || res.Outbound[0].URL != "/api/warm/0" {
			t.Errorf("run %d: outbound = %+v, want this execution's 4 calls", i, res.Outbound)
		}
	}
}
