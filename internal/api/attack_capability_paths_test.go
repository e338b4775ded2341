package api_test

import (
	"fmt"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// manyCalls lets the capability name take 200 calls per execution: a
// before-the-fix run must not see later probes refused for max_calls.
func manyCalls(name string) func(*apitest.Gateway) {
	return func(o *apitest.Gateway) {
		c := o.Capabilities[name]
		c.MaxCalls = 200
		o.Capabilities[name] = c
	}
}

// capabilityProbe is one call a guest makes through a capability in the
// round-three attack tests: its path (relative to the base, a ?probe=N
// added to find it at the service) and init (a JS object literal).
type capabilityProbe struct {
	family, path, init string
}

// probeCapability makes each call through the capability name in one
// execution and returns, for each, what the guest got: "refused MESSAGE"
// or "ok STATUS", and the execution's outbound records.
func probeCapability(t *testing.T, f *attackFixture, name string, probes []capabilityProbe) ([]string, []execution.Outgoing) {
	t.Helper()
	var calls strings.Builder
	for i, p := range probes {
		sep := "?"
		if strings.Contains(p.path, "?") {
			sep = "&"
		}
		init := p.init
		if init == "" {
			init = "{}"
		}
		fmt.Fprintf(&calls, "  await call(%q, %s);\n", p.path+sep+"probe="+strconv.Itoa(i), init)
	}
	code := fmt.Sprintf(`export default { async fetch(req, env) {
  const out = [];
  const call = async (u, init) => {
    try { const r = await env[%q].fetch(u, init); await r.arrayBuffer(); out.push("ok " + r.status); }
    catch (e) { out.push("refused " + e.message); }
  };
%s  return new Response(out.join("\n"));
} }`, name, calls.String())
	res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{name}})
	wantSuccess(t, res)
	lines := strings.Split(res.Response.Body, "\n")
	if len(lines) != len(probes) {
		t.Fatalf("guest answered %q, want a line per call", res.Response.Body)
	}
	return lines, res.Outbound
}

// reached returns the requests of probe i that reached the service.
func (s *attackService) reached(i int) []*http.Request {
	var out []*http.Request
	for _, r := range s.requests() {
		if r.URL.Query().Get("probe") == strconv.Itoa(i) {
			out = append(out, r)
		}
	}
	return out
}

// wantRefused fails unless every probe was refused by the shim, recorded
// denied under the capability, and never reached the service.
func wantRefused(t *testing.T, f *attackFixture, name string, probes []capabilityProbe, lines []string, outbound []execution.Outgoing) {
	t.Helper()
	if len(outbound) != len(probes) {
		t.Fatalf("%d outbound records for %d calls: %+v", len(outbound), len(probes), outbound)
	}
	for i, p := range probes {
		if !strings.HasPrefix(lines[i], "refused capability "+name+": refused: ") || !outbound[i].Denied || outbound[i].Capability != name {
			t.Errorf("%s: fetch(%q %s) = %q, record %+v; want refused and recorded denied", p.family, p.path, p.init, lines[i], outbound[i])
		}
		if got := f.service.reached(i); len(got) > 0 {
			t.Errorf("%s: fetch(%q %s) reached the service as %s %s", p.family, p.path, p.init, got[0].Method, got[0].URL.RequestURI())
		}
	}
}

// TestAttackCapabilityPathNormalised: the URL parser in the guest resolves
// dot segments and the shim placed what it gave under the base, but the
// service is not that parser. Tomcat, Jetty and Spring drop ";" path
// parameters ("..;/admin" is "../admin" to them), IIS decodes "%u" escapes
// and overlong UTF-8, servers fold Unicode (NFKC: "．" is ".") or map it to
// ASCII (Windows best fit: "∕" is "/"), or decode an escape of an
// unreserved character into it. Every such spelling lay under the base as
// the parser reads it and reached the service; each family is refused now.
func TestAttackCapabilityPathNormalised(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, manyCalls("reader"))
	families := map[string][]string{
		"path parameters":        {"..;/admin", "items/..;/..;/admin", "..;x=1/admin", "items;jsessionid=0", "%2e%2e;/admin"},
		"%u escapes":             {"%u002e%u002e/admin", "%U002E%U002E/admin", "items%u2215..%u2215admin", "x%u005c..%u005cadmin"},
		"overlong UTF-8":         {"%c0%ae%c0%ae/admin", "%e0%80%ae%e0%80%ae/admin", "items%c0%af..%c0%afadmin", "%C1%9C..%C1%9Cadmin"},
		"Unicode dots, slashes":  {"．．/admin", "%EF%BC%8E%EF%BC%8E/admin", "items／..／admin", "%E2%80%A4%E2%80%A4/admin", "items∕..∕admin", "items＼..＼admin"},
		"escapes of safe chars":  {"%41dmin", "items%2Dx", "%7e/admin", "x%3A"},
		"escapes of separators":  {"items%3B/admin", "items%3Fx", "items%23x", "items%09x"},
		"double escapes":         {"%252e%252e/admin", "%25%32%65%25%32%65/admin", "items%255c..%255cadmin"},
		"empty and dot segments": {"items//admin", ".../admin", "..../admin"},
	}
	var probes []capabilityProbe
	for _, family := range slices.Sorted(func(yield func(string) bool) {
		for k := range families {
			yield(k)
		}
	}) {
		if len(families[family]) < 3 {
			t.Fatalf("%s: fewer than three spellings", family)
		}
		for _, path := range families[family] {
			probes = append(probes, capabilityProbe{family: family, path: path})
		}
	}
	lines, outbound := probeCapability(t, f, "reader", probes)
	wantRefused(t, f, "reader", probes, lines, outbound)
	// What is allowed still goes: escapes of characters that are not
	// plain, and non-ASCII letters in shortest-form UTF-8.
	ok := []capabilityProbe{{path: "caf%C3%A9"}, {path: "a%20b"}, {path: "v1/things:batchGet"}, {path: "日本/x"}}
	lines, _ = probeCapability(t, f, "reader", ok)
	for i, p := range ok {
		if lines[i] != "ok 200" {
			t.Errorf("fetch(%q) = %q, want it to reach the service", p.path, lines[i])
		}
	}
}

// TestAttackCapabilityHeaderSpellings: the shim dropped the proxy headers
// it knew by name, but servers behind CGI, PHP, nginx or WSGI read "_" as
// "-" (X_HTTP_METHOD_OVERRIDE is X-HTTP-Method-Override to them), and
// services take the path or the client from names the list missed
// (X-Original-URI, X-Envoy-Original-Path, Client-IP). A call now forwards
// only the headers on the capability's list, so none of these reaches the
// service, in any spelling.
func TestAttackCapabilityHeaderSpellings(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, manyCalls("reader"))
	families := map[string][]string{
		"underscore spellings": {"X_HTTP_METHOD_OVERRIDE", "x_http_method", "X_Method_Override", "X_Original_URL", "X_Rewrite_URL", "X_Forwarded_For",
			"x_forwarded_host", "X_Real_IP", "Accept_Encoding"},
		"override names missed": {"X-Original-URI", "X-Override-URL", "X-Envoy-Original-Path", "X-MS-HTTP-Method", "X-HTTP-Method-Override2"},
		"client names missed":   {"Client-IP", "X-Cluster-Client-IP", "X-Host", "Via"},
	}
	var probes []capabilityProbe
	var names []string
	for _, family := range []string{"underscore spellings", "override names missed", "client names missed"} {
		for _, h := range families[family] {
			init := fmt.Sprintf(`{ headers: { %q: "DELETE /admin 10.0.0.1 marker-%d", "Idempotency-Key": "k-%d" } }`, h, len(probes), len(probes))
			probes = append(probes, capabilityProbe{family: family, path: "headers", init: init})
			names = append(names, h)
		}
	}
	lines, _ := probeCapability(t, f, "reader", probes)
	for i, p := range probes {
		got := f.service.reached(i)
		if len(got) != 1 || lines[i] != "ok 200" {
			t.Fatalf("%s: the call with %s reached the service %d times (guest: %q)", p.family, names[i], len(got), lines[i])
		}
		for h, values := range got[0].Header {
			if slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, fmt.Sprintf("marker-%d", i)) }) {
				t.Errorf("%s: the guest's %s reached the service as %s", p.family, names[i], h)
			}
		}
		if got[0].Method != http.MethodGet || got[0].Header.Get("Idempotency-Key") != fmt.Sprintf("k-%d", i) {
			t.Errorf("%s: the service got %s with Idempotency-Key %q, want GET with the listed header", p.family, got[0].Method, got[0].Header.Get("Idempotency-Key"))
		}
	}
}

// TestAttackCapabilityMethodParam: Rails, Laravel and Symfony take a POST's
// method from a _method parameter (Laravel and Symfony also from the
// query), so a capability allowing GET and POST let a guest DELETE. A
// _method naming a method the capability does not allow is refused now,
// in the query of any call and in a body the service would read as a
// form, in every spelling those servers read; an allowed one passes, and
// so does a body the shim cannot read as a form (documented).
func TestAttackCapabilityMethodParam(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, manyCalls("few"))
	post := func(body, contentType string) string {
		if contentType == "" {
			return fmt.Sprintf(`{ method: "POST", body: new TextEncoder().encode(%q) }`, body)
		}
		return fmt.Sprintf(`{ method: "POST", body: %q, headers: { "content-type": %q } }`, body, contentType)
	}
	const form = "application/x-www-form-urlencoded"
	multipart := func(name, value string) string {
		return "--XB\r\nContent-Disposition: form-data; name=" + name + "\r\n\r\n" + value + "\r\n--XB--\r\n"
	}
	probes := []capabilityProbe{
		{family: "query", path: "orders?_method=DELETE"},
		{family: "query", path: "orders?a=1&%5Fmethod=delete"},
		{family: "query", path: "orders?_METHOD=PUT", init: post("qty=1", form)},
		{family: "query", path: "orders?.method=PATCH"},
		{family: "query", path: "orders?_method%5B%5D=DELETE"},
		{family: "urlencoded body", path: "orders", init: post("_method=DELETE", form)},
		{family: "urlencoded body", path: "orders", init: post("qty=2&_method=put", form+"; charset=UTF-8")},
		{family: "urlencoded body", path: "orders", init: post("qty=2;%5F%6Dethod=PATCH", "Application/X-WWW-Form-Urlencoded")},
		{family: "urlencoded body", path: "orders", init: post("_method=%44ELETE", "")},
		{family: "multipart body", path: "orders", init: post(multipart(`"_method"`, "DELETE"), "multipart/form-data; boundary=XB")},
		{family: "multipart body", path: "orders", init: post(multipart(`_METHOD`, "put"), "multipart/form-data; boundary=\"XB\"")},
		{family: "multipart body", path: "orders", init: post(multipart(`"a"`, "1")+"--XB\r\nContent-Disposition: form-data; name*=UTF-8''%5Fmethod\r\n\r\nDELETE\r\n--XB--", "multipart/form-data; boundary=XB")},
	}
	lines, outbound := probeCapability(t, f, "few", probes)
	wantRefused(t, f, "few", probes, lines, outbound)
	allowed := []capabilityProbe{
		{path: "orders?_method=GET"},
		{path: "orders", init: post("_method=POST&qty=1", form)},
		{path: "orders", init: post(`{"_method":"DELETE"}`, "application/json")},
		{path: "orders?payment_method=card"},
	}
	lines, _ = probeCapability(t, f, "few", allowed)
	for i, p := range allowed {
		if lines[i] != "ok 200" {
			t.Errorf("fetch(%q %s) = %q, want it to reach the service", p.path, p.init, lines[i])
		}
	}
}

// TestAttackCapabilityReasonPhrase: a capability's answer had its headers
// and body masked, but its status text (the reason phrase of the status
// line) reached the guest as the service wrote it, credential and all.
// The guest reverses what it got (which no output masking would catch).
func TestAttackCapabilityReasonPhrase(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	for _, reason := range []string{"AUTH", "OK AUTH OK", "TOKEN", "Bad TOKEN;TOKEN"} {
		t.Run(reason, func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  const r = await env.reader.fetch("reason?as=" + encodeURIComponent(%q));
  return new Response(r.status + " " + [...r.statusText].reverse().join(""));
} }`, reason)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
			wantSuccess(t, res)
			noCredentials(t, "the status text", res.Response.Body)
			got := reverse(strings.TrimPrefix(res.Response.Body, "200 "))
			want := strings.NewReplacer("AUTH", "[REDACTED]", "TOKEN", "[REDACTED]").Replace(reason)
			if got != want {
				t.Errorf("status text = %q, want %q", got, want)
			}
		})
	}
}

// TestAttackCapabilityLongAnswer: masking a capability's answer costs the
// shim CPU for each byte, taken from every neighbour, and nothing bound
// how many bytes one call could make it mask (four guests streaming 1.5 GB
// each raised neighbours' latency 10 ms -> 50-200 ms). A call's answer is
// cut past max_answer_bytes now: with a Content-Length over it the call
// fails at once; without one, or gzip-encoded (a few KB that decode to
// more), the guest's read fails there.
func TestAttackCapabilityLongAnswer(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	f := startAttackGateway(t, func(o *apitest.Gateway) {
		c := o.Capabilities["reader"]
		c.MaxAnswerBytes = limit
		o.Capabilities["reader"] = c
	})
	for _, tt := range []struct {
		as    string
		bytes int
		cut   bool
	}{
		{"length", 2 * limit, true}, {"chunked", 2 * limit, true}, {"gzip", 8 * limit, true},
		{"chunked", limit + 1, true}, {"chunked", limit, false}, {"length", limit, false},
	} {
		t.Run(fmt.Sprintf("%s %d", tt.as, tt.bytes), func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  let n = 0;
  try {
    const r = await env.reader.fetch("long?as=%s&bytes=%d");
    const reader = r.body.getReader();
    for (;;) { const { done, value } = await reader.read(); if (done) break; n += value.length; }
    return new Response(n + " whole");
  } catch (e) { return new Response(n + " " + e.message); }
} }`, tt.as, tt.bytes)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
			wantSuccess(t, res)
			n, message, _ := strings.Cut(res.Response.Body, " ")
			got, _ := strconv.Atoi(n)
			if !tt.cut {
				if message != "whole" || got != tt.bytes {
					t.Errorf("guest read %q, want all %d bytes", res.Response.Body, tt.bytes)
				}
				return
			}
			if got > limit || !strings.Contains(message, "cut") || !strings.Contains(message, strconv.Itoa(limit)) {
				t.Errorf("guest read %q, want at most %d bytes and an error saying the answer was cut", res.Response.Body, limit)
			}
		})
	}
}
