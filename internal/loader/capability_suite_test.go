package loader_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// cfToken is the credential the capability's service takes: the gateway
// holds it, the guest must never see it.
const cfToken = "Bearer cf-tok-5Vd81qPz"

// echoService is a service a capability calls: it records the
// Authorization header of each call and echoes it back in a header and in
// its body.
type echoService struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func startEchoService(t *testing.T) *echoService {
	t.Helper()
	s := &echoService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "%s %s auth=%s", r.Method, r.URL.Path, r.Header.Get("Authorization"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *echoService) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// capabilityGuest calls env.inventory and answers with what came back, its
// echo header, and what the binding shows of itself.
const capabilityGuest = `export default { async fetch(req, env) {
  let out;
  try {
    const r = await env.inventory.fetch("items/7");
    out = (await r.text()) + " echo=" + r.headers.get("x-echo");
  } catch (e) { out = "error: " + e.message; }
  console.log(out);
  return new Response(out + " binding=" + JSON.stringify(env.inventory) + Object.keys(env.inventory).join(","));
} }`

// capabilityJob is a job with no network that may call the service at
// base as capability inventory, with the token as its header.
func capabilityJob(id, base string) *execution.Job {
	j := loadertest.Job(id, capabilityGuest, 5*time.Second)
	j.Capabilities = map[string]execution.Capability{"inventory": {
		URL: base, Headers: map[string]string{"Authorization": cfToken},
		Methods: []string{"GET"}, TimeoutMs: 3000, MaxCalls: 5, Secrets: []string{cfToken},
	}}
	return j
}

// TestCloudflareCapability runs a capability call through the cloudflare
// backend (signed job, HTTP/2 over TLS) to the shim served by a separate
// workerd, in its two shapes:
//
//   - "capability network": the shim given CAPABILITY_NETWORK, as the local
//     backend runs it; the call reaches the service with the configured
//     header, the guest sees it masked, the record says capability.
//   - "as deployed": the shim without that binding, as `gateway deploy`
//     uploads it; the Capability entrypoint falls back to the shim's own
//     fetch. Here that is workerd's public-only network, which refuses the
//     loopback service as Cloudflare's network refuses a private address:
//     the call fails cleanly, nothing reaches the service, the record says
//     capability and the header shows nowhere.
//   - "VPC binding": the capability reached through a Workers VPC service
//     (vpc in the job), the shim given the binding VPC_inventory (on
//     Cloudflare the vpc_service binding gateway deploy adds; here a
//     network reaching the service only) and no capability network: the
//     Capability entrypoint's call goes through that binding and reaches
//     the service, as in the first case.
//   - "VPC, no binding": a shim without it refuses the call, reaching
//     nothing, rather than fetch the URL another way.
func TestCloudflareCapability(t *testing.T) {
	t.Parallel()
	network := func(base string) func(*local.Config) {
		return func(c *local.Config) { c.CapabilityURLs = []string{base} }
	}
	vpc := func(base string) func(*local.Config) {
		return func(c *local.Config) { c.VPCCapabilities = map[string]string{"inventory": base} }
	}
	for _, tc := range []struct {
		name    string
		opt     func(base string) func(*local.Config)
		vpc     bool
		reached bool
	}{
		{"capability network", network, false, true},
		{"as deployed", nil, false, false},
		{"VPC binding", vpc, true, true},
		{"VPC, no binding", network, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc := startEchoService(t)
			base := svc.URL + "/api/"
			opts := []func(*local.Config){loadertest.Processes(1)}
			if tc.opt != nil {
				opts = append(opts, tc.opt(base))
			}
			deployed := loadertest.StartLocal(t, zerolog.Nop(), opts...)
			t.Cleanup(func() { deployed.Close() })
			shimURL, secret := deployed.ShimURL()
			cf := cloudflareOverTLS(t, startTLSProxy(t, shimURL), secret)
			job := capabilityJob("cap-"+strings.NewReplacer(" ", "-", ",", "").Replace(tc.name), base)
			c := job.Capabilities["inventory"]
			c.VPC = tc.vpc
			job.Capabilities["inventory"] = c
			events, err := loadertest.Run(t, cf, job)
			if err != nil {
				t.Fatalf("Execute = %v", err)
			}
			res := loadertest.LastResult(t, events)
			checkCapabilityResult(t, events, res, tc.reached)
			if tc.vpc && !tc.reached && !strings.Contains(res.Response.Body, "call failed: the shim has no binding VPC_inventory") {
				t.Errorf("guest answered %q, want the missing VPC binding named", res.Response.Body)
			}
			calls := svc.calls()
			if tc.reached && (len(calls) != 1 || calls[0] != cfToken) {
				t.Errorf("the service saw Authorization %q, want exactly one call with the configured header", calls)
			}
			if !tc.reached && len(calls) != 0 {
				t.Errorf("the service saw %d calls, want none: the shim's own network refuses it", len(calls))
			}
		})
	}
}

// checkCapabilityResult checks what the guest made of its call: the answer
// (reached) or a call failure, never the token, and one outbound record
// naming the capability.
func checkCapabilityResult(t *testing.T, events []execution.Event, res *execution.Result, reached bool) {
	t.Helper()
	if !res.Success || res.Response == nil {
		t.Fatalf("result = %+v, want success", res)
	}
	body := res.Response.Body
	want := "GET /api/items/7 auth=[REDACTED] echo=[REDACTED]"
	if !reached {
		want = "error: capability inventory: call failed"
	}
	if !strings.HasPrefix(body, want) {
		t.Errorf("guest answered %q, want it to start with %q", body, want)
	}
	for _, ev := range events {
		if line := fmt.Sprintf("%+v %+v", ev.Log, ev.Result); strings.Contains(line, "cf-tok-") {
			t.Errorf("the guest's output holds the token: %s", line)
		}
	}
	if len(res.Outbound) != 1 {
		t.Fatalf("outbound = %+v, want one record", res.Outbound)
	}
	o := res.Outbound[0]
	wantStatus := 0
	if reached {
		wantStatus = 200
	}
	if o.Capability != "inventory" || o.Method != "GET" || !strings.HasSuffix(o.URL, "/api/items/7") || o.Denied || o.Status != wantStatus {
		t.Errorf("outbound = %+v, want GET .../api/items/7 by capability inventory, status %d, not denied", o, wantStatus)
	}
}
