package api_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestGuestNeverReachesLocalAddresses points guest code at loopback, private
// and link-local targets under every outbound mode. Every attempt must be
// refused before a connection is made, and the local test server must count
// no hits.
func TestGuestNeverReachesLocalAddresses(t *testing.T) {
	t.Parallel()
	hits, port := internalServer(t)
	gw, _ := url.Parse(gatewayURL(t))
	targets := []string{
		"http://127.0.0.1:" + port + "/",
		"http://[::1]:" + port + "/",
		"http://0.0.0.0:" + port + "/",
		"http://localhost:" + port + "/",
		"http://2130706433:" + port + "/", // 127.0.0.1 spelt as a number
		gw.String() + "/healthz",          // the gateway itself
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/",
		"http://[fd00::1]/",
		"http://metadata.google.internal/",
	}
	code := prober(targets)
	modes := map[string]any{
		"true":         true,
		"star":         []string{"*"},
		"named public": []string{"example.com", "*.example.net"},
	}
	for name, allow := range modes {
		t.Run(name, func(t *testing.T) {
			res := execute(t, map[string]any{"code": code, "allowOutbound": allow})
			wantSuccess(t, res)
			if strings.Contains(res.Response.Body, "REACHED") {
				t.Errorf("guest reached a local target:\n%s", res.Response.Body)
			}
			if len(res.Outbound) != len(targets) {
				t.Fatalf("outbound = %+v, want %d records", res.Outbound, len(targets))
			}
			for i, o := range res.Outbound {
				if !o.Denied || o.Status != 0 || o.Method != "GET" {
					t.Errorf("outbound[%d] = %+v, want a denied GET", i, o)
				}
			}
			for _, line := range strings.Split(res.Response.Body, "\n") {
				if !strings.Contains(line, "denied") {
					t.Errorf("guest saw %q, want a clear denial", line)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the local test server was hit %d times", n)
	}
}

// TestGuestNeverReachesIPv4InsideIPv6 aims guest code at a server on
// 127.0.0.1 through the IPv6 forms that embed an IPv4 address (compatible,
// mapped, SIIT, NAT64, 6to4, Teredo), each spelt several ways, and at the
// reserved IPv4 ranges. Every request must be recorded as denied, and the
// server must see none.
func TestGuestNeverReachesIPv4InsideIPv6(t *testing.T) {
	t.Parallel()
	hits, port := internalServer(t)
	var targets []string
	for _, host := range []string{
		"::127.0.0.1", "::7f00:1", "0:0:0:0:0:0:7F00:0001",
		"::ffff:127.0.0.1", "::FFFF:7f00:1", "0:0:0:0:0:ffff:7f00:1",
		"::ffff:0:127.0.0.1", "::ffff:0:7f00:1", "0:0:0:0:ffff:0:7f00:1",
		"64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::7f00:1",
		"2002:7f00:1::", "2002:7f00:0001::1", "2001:0:7f00:1::", "2001::127.0.0.1",
	} {
		targets = append(targets, "http://["+host+"]:"+port+"/", "http://["+host+"]/")
	}
	for _, host := range []string{"192.0.0.8", "192.0.2.1", "192.88.99.1", "198.18.0.1", "198.19.255.254",
		"198.51.100.7", "203.0.113.9", "[100::1]", "[fec0::1]", "[5f00::1]", "[3fff::1]", "[2001:2::1]", "[2001:20::1]"} {
		targets = append(targets, "http://"+host+"/")
	}
	res := execute(t, map[string]any{"code": prober(targets), "allowOutbound": true})
	wantSuccess(t, res)
	for _, line := range strings.Split(res.Response.Body, "\n") {
		if !strings.Contains(line, "denied") || !strings.Contains(line, "not a public address") {
			t.Errorf("guest saw %q, want a denial as not a public address", line)
		}
	}
	if len(res.Outbound) != len(targets) {
		t.Fatalf("outbound has %d records, want %d", len(res.Outbound), len(targets))
	}
	for i, o := range res.Outbound {
		if !o.Denied || o.Status != 0 {
			t.Errorf("outbound[%d] = %+v, want denied", i, o)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server on 127.0.0.1 was hit %d times", n)
	}
}

// internalServer starts a loopback server standing for an internal
// service, counting the requests that reach it, and returns the count and
// its port.
func internalServer(t *testing.T) (*atomic.Int64, string) {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "internal data")
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	return hits, port
}

// prober is a guest that fetches each target in turn and answers one line
// per target: "REACHED target status", or "refused target: error".
func prober(targets []string) string {
	return fmt.Sprintf(`
export default {
  async fetch() {
    const results = [];
    for (const target of %s) {
      try {
        const r = await fetch(target);
        results.push("REACHED " + target + " " + r.status);
      } catch (err) {
        results.push("refused " + target + ": " + err.message);
      }
    }
    return new Response(results.join("\n"));
  },
};`, jsArray(targets))
}

func jsArray(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func TestHostListDeniesOtherHosts(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"code": `export default { async fetch() {
			const out = [];
			for (const u of ["https://other.example.org/x", "https://api.example.invalid/y?q=1"]) {
				try { await fetch(u, { method: "POST", body: "x" }); out.push("ok " + u); }
				catch (err) { out.push(err.message); }
			}
			return new Response(out.join("\n"));
		} }`,
		"allowOutbound": []string{"api.example.invalid"},
	})
	wantSuccess(t, res)
	lines := strings.Split(res.Response.Body, "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "other.example.org") || !strings.Contains(lines[0], "not in allowOutbound") {
		t.Errorf("guest saw %q, want other.example.org denied as not in allowOutbound", res.Response.Body)
	}
	// api.example.invalid is allowed: the request is attempted, and fails
	// at DNS (.invalid never resolves, so no test traffic leaves this
	// machine), but not as a denial.
	if strings.Contains(lines[1], "denied") {
		t.Errorf("allowed host was denied: %q", lines[1])
	}
	want := []execution.Outgoing{
		{Method: "POST", URL: "https://other.example.org/x", Denied: true},
		{Method: "POST", URL: "https://api.example.invalid/y?q=1"},
	}
	if len(res.Outbound) != 2 || res.Outbound[0] != want[0] || res.Outbound[1].URL != want[1].URL || res.Outbound[1].Denied {
		t.Errorf("outbound = %+v, want %+v (the second with or without a status)", res.Outbound, want)
	}
}

func TestNoNetworkBlocksFetchAndConnect(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `
import { connect } from "cloudflare:sockets";
export default { async fetch() {
	const out = [];
	try { await fetch("https://example.com/"); out.push("fetch ok"); } catch (err) { out.push("fetch blocked: " + err.message); }
	try { const s = connect("example.com:443"); await s.opened; out.push("connect ok"); } catch (err) { out.push("connect blocked: " + err.message); }
	return new Response(out.join("\n"));
} }`})
	wantSuccess(t, res)
	if strings.Contains(res.Response.Body, " ok") || strings.Count(res.Response.Body, "blocked") != 2 {
		t.Errorf("guest saw %q, want fetch and connect both blocked", res.Response.Body)
	}
	if len(res.Outbound) != 0 {
		t.Errorf("outbound = %+v, want none recorded (no network at all)", res.Outbound)
	}
}
