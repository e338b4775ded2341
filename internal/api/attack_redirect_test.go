package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAttackCapabilityRedirects: a service that answers a redirect, to
// another host, to a path outside the base or to another port of its own
// host, must not take the call (and its credentials) there: the guest gets
// the redirect itself, whatever redirect mode it asks for, and a call to
// the Location through the binding is refused.
func TestAttackCapabilityRedirects(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	origin := f.service.srv.URL
	targets := []string{other.URL + "/steal", origin + "/admin", "/admin", "//" + strings.TrimPrefix(other.URL, "http://") + "/steal"}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, to := range targets {
			t.Run(fmt.Sprintf("%d to %s", status, to), func(t *testing.T) {
				path := fmt.Sprintf("redirect/%d?to=%s", status, url.QueryEscape(to))
				code := fmt.Sprintf(`export default { async fetch(req, env) {
  const out = [];
  for (const redirect of ["manual", "follow", undefined]) {
    try {
      const r = await env.reader.fetch(%q, redirect ? { redirect } : {});
      out.push(r.status + " " + (r.headers.get("location") === %q));
    } catch (e) { out.push("refused"); }
  }
  try { await env.reader.fetch(%q); out.push("followed by hand"); } catch (e) { out.push("refused"); }
  return new Response(out.join(","));
} }`, path, to, to)
				res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
				wantSuccess(t, res)
				// manual: the redirect itself; follow (the default): the
				// guest's runtime follows it through the binding, which
				// refuses every Location here, as it refuses one by hand.
				want := fmt.Sprintf("%d true,refused,refused,refused", status)
				if res.Response.Body != want {
					t.Errorf("guest saw %q, want %q", res.Response.Body, want)
				}
			})
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
	for _, r := range f.service.requests() {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			t.Errorf("the service got %s outside the base", r.URL.Path)
		}
	}
}

// TestAttackCapabilityErrorsHideTheHost: the guest is never told a
// capability's host, also not by the error of a call that fails (the
// service is down) or is refused (a method not allowed), in its message or
// its stack, whichever URL spelling it used.
func TestAttackCapabilityErrorsHideTheHost(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	code := `export default { async fetch(req, env) {
  const out = [];
  for (const [u, method] of [["x", "GET"], ["/svc/y", "GET"], ["http://capability.invalid/svc/z", "GET"], ["./w?q=1", "GET"], ["x", "POST"], ["x", "DELETE"]]) {
    try { const r = await env.down.fetch(u, { method }); out.push("answered " + r.status); } catch (e) { out.push(String(e) + " | " + e.stack); }
  }
  return new Response(out.join("\n---\n"));
} }`
	res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"down"}})
	wantSuccess(t, res)
	u, _ := url.Parse(f.service.srv.URL) // the closed port is on the same loopback address
	calls := strings.Split(res.Response.Body, "\n---\n")
	if len(calls) != 6 || strings.Contains(res.Response.Body, "answered") {
		t.Fatalf("guest saw %q, want six failed calls", res.Response.Body)
	}
	if strings.Contains(res.Response.Body, u.Hostname()) || strings.Contains(res.Response.Body, "localhost") {
		t.Errorf("an error names the host: %s", res.Response.Body)
	}
}
