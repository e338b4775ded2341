package playground_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// inventoryToken is the credential the capability adds to its calls.
const inventoryToken = "Bearer inv-tok-Pq83Zr"

// capGateway is a gateway with one API key and one capability, inventory,
// calling a service started by the test that records the Authorization
// header of each call.
type capGateway struct {
	url, key string
	mu       sync.Mutex
	auth     []string
}

func (g *capGateway) calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.auth...)
}

func startCapGateway(t *testing.T) *capGateway {
	t.Helper()
	g := &capGateway{}
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.auth = append(g.auth, r.Header.Get("Authorization"))
		g.mu.Unlock()
		fmt.Fprintf(w, `{"sku":%q,"stock":12}`, strings.TrimPrefix(r.URL.Path, "/api/items/"))
	}))
	t.Cleanup(svc.Close)
	base := svc.URL + "/api/"
	log := zerolog.New(&loadertest.Buffer{})
	pool := loadertest.StartLocal(t, log, loadertest.Processes(1), func(c *local.Config) { c.CapabilityURLs = []string{base} })
	t.Cleanup(func() { pool.Close() })
	key, entry := apitest.NewKey(t, "browser")
	opts := apitest.Options()
	opts.Keys = auth.NewKeyring([]auth.Key{entry})
	opts.Capabilities = executions.Capabilities{"inventory": execution.Capability{
		URL: base, Headers: map[string]string{"authorization": inventoryToken},
		Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 5, Secrets: []string{inventoryToken},
	}}
	srv := httptest.NewServer(apitest.Serve(t, log, pool, opts))
	t.Cleanup(srv.Close)
	g.url, g.key = srv.URL, key
	return g
}

// capabilityCode calls the inventory capability and prints what it says.
const capabilityCode = `export default {
  async fetch(request, env) {
    const r = await env.inventory.fetch("items/sku-42");
    console.log("stock:", (await r.json()).stock);
    return new Response("status " + r.status);
  }
}`

// capsOffered returns the names the capabilities picker offers, or nil
// when it is hidden.
const capsOffered = `document.getElementById("caps-field").hidden ? null :
  [...document.querySelectorAll("#caps input")].map((c) => c.value)`

// capsAnswered resolves once the page's GET /capabilities has been
// answered (the browser records its resource timing entry), so that what
// the picker shows is the answer's doing.
const capsAnswered = `new Promise((resolve) => {
  const answered = () => performance.getEntriesByName(location.origin + "/capabilities").length > 0;
  if (answered()) return resolve(true);
  new PerformanceObserver((_, obs) => {
    if (answered()) { obs.disconnect(); resolve(true); }
  }).observe({ type: "resource" });
})`

// testCapabilities: the page offers the capabilities GET /capabilities
// lists for the key entered (none, and no error, before a key is entered
// on a keyed gateway; none on a gateway without capabilities); a ticked
// one goes into the request and the curl command; the run calls the
// service with the configured header and shows the outbound entry.
func testCapabilities(t *testing.T, g *gateways, browser ctxT) {
	open := tab(t, browser, g.open+"/playground")
	eval[bool](t, open, capsAnswered)
	if got := eval[[]string](t, open, capsOffered); got != nil {
		t.Errorf("on a gateway without capabilities the page offers %q, want no picker", got)
	}

	cg := startCapGateway(t)
	ctx := tab(t, browser, shareLink(cg.url, map[string]any{"code": capabilityCode}))
	eval[bool](t, ctx, capsAnswered)
	if got := eval[[]string](t, ctx, capsOffered); got != nil {
		t.Errorf("before a key is entered the page offers %q, want no picker (GET /capabilities is 401)", got)
	}
	if e := text(t, ctx, "#field-error") + text(t, ctx, "#result"); e != "" {
		t.Errorf("before a key is entered and Run the page shows %q, want no error", e)
	}
	setKey(t, ctx, cg.key)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#caps input[value="inventory"]`)))
	if got := eval[[]string](t, ctx, capsOffered); len(got) != 1 || got[0] != "inventory" {
		t.Fatalf("with the key the page offers %q, want [inventory]", got)
	}
	if c := text(t, ctx, "#curl"); strings.Contains(c, `"capabilities"`) {
		t.Errorf("curl command before the tick asks for capabilities:\n%s", c)
	}
	eval[chromedp.Void](t, ctx, `document.querySelector('#caps input[value="inventory"]').click()`)
	if c := text(t, ctx, "#curl"); !strings.Contains(c, "\"capabilities\": [\n    \"inventory\"\n  ]") {
		t.Errorf("curl command after the tick = \n%s\nwant it to ask for inventory", c)
	}
	if state := runAndWait(t, ctx); state != "success" {
		t.Fatalf("result state %q (%s), want success", state, text(t, ctx, "#result"))
	}
	if got := consoleMessages(t, ctx); len(got) != 1 || got[0] != "stock: 12" {
		t.Errorf("console = %q, want the service's answer, stock: 12", got)
	}
	result := text(t, ctx, "#result")
	if !strings.Contains(result, "status 200") || !strings.Contains(result, "GET /api/items/sku-42 200 (capability inventory)") {
		t.Errorf("result box = %q, want the response and the outbound entry of the capability", result)
	}
	if calls := cg.calls(); len(calls) != 1 || calls[0] != inventoryToken {
		t.Errorf("the service saw Authorization %q, want one call with the configured header", calls)
	}
	noCSPViolations(t, ctx)
}
