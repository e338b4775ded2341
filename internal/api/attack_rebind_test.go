package api_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/store"
)

// TestAttackDNSRebinding: without API keys the gateway listens only on
// loopback, and anyone who reaches it is the operator. A web page the
// operator visits can reach it too, by DNS rebinding: its own host name,
// resolved anew to 127.0.0.1, makes the browser treat the gateway as the
// page's origin, free to run code (with every capability open to all
// callers) and read past executions. The page cannot change the Host
// header, which names its own host: a request that arrived on a loopback
// address naming another host is refused on every keyed route, while the
// loopback spellings are served.
func TestAttackDNSRebinding(t *testing.T) {
	t.Parallel()
	gatewayURL(t) // starts the shared runtime
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := apitest.Options() // no keys: the anonymous caller
	o.Store = st
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), shared.backend, o))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	routes := []struct{ method, path, body string }{
		{http.MethodPost, "/execute", `{"code":"export default { fetch() { return new Response('ran') } }"}`},
		{http.MethodPost, "/executions", `{"code":"export default { fetch() { return new Response('ran') } }"}`},
		{http.MethodGet, "/executions", ""},
		{http.MethodGet, "/capabilities", ""},
	}
	send := func(host, method, path, body string) int {
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		req.Host = host
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, _ := do(t, req)
		return resp.StatusCode
	}
	for _, host := range []string{"attacker.example", "attacker.example:" + port, "127.0.0.1.attacker.example:" + port,
		"localhost.attacker.example", "ATTACKER.example:80", "0x7f000001.example"} {
		for _, r := range routes {
			if status := send(host, r.method, r.path, r.body); status != http.StatusForbidden {
				t.Errorf("%s %s with Host %q = %d, want 403", r.method, r.path, host, status)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:" + port, "localhost", "127.0.0.1"} {
		for _, r := range routes {
			if status := send(host, r.method, r.path, r.body); status >= 300 {
				t.Errorf("%s %s with Host %q = %d, want it served", r.method, r.path, host, status)
			}
		}
	}
}
