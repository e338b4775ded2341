package playground_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dynamic-workers/gateway/internal/playground"
)

// TestAttackLinkLeavesSecretsOut: the Link button writes the request into
// the address, which lands in the browser's history and in whatever chat
// the link is pasted to. Secret values must stay out of it, whatever they
// look like, as the API key does; the rest of the request goes in.
func TestAttackLinkLeavesSecretsOut(t *testing.T) {
	srv := httptest.NewServer(playground.Handler(playground.Options{}))
	t.Cleanup(srv.Close)
	browser := newBrowser(t)
	ctx := tab(t, browser, srv.URL+playground.Path)
	for _, secret := range []string{"sk-live-9f8e7d6c", "pässwörd-ü✓", `quote"back\slash`, "line\nbreak"} {
		t.Run(secret, func(t *testing.T) {
			eval[any](t, ctx, `(() => {
  document.getElementById("secrets").value = JSON.stringify({ TOKEN: `+quote(secret)+` });
  document.getElementById("env").value = JSON.stringify({ NAME: "visible" });
  document.getElementById("share").click();
})()`)
			hash := eval[string](t, ctx, `location.hash`)
			data, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(hash, "#r="))
			if err != nil || !strings.Contains(string(data), `"NAME":"visible"`) {
				t.Fatalf("Link wrote %q (%v): %s, want the request with its env", hash, err, data)
			}
			for _, form := range []string{secret, quote(secret), strings.Trim(quote(secret), `"`)} {
				if strings.Contains(string(data), form) || strings.Contains(hash, form) {
					t.Errorf("Link put the secret %q in the address: %s", secret, data)
				}
			}
		})
	}
	noCSPViolations(t, ctx)
}

// grantCode uses every grant a request can hold: the inventory capability
// and the network.
const grantCode = `export default {
  async fetch(request, env) {
    if (env.inventory) console.log("capability:", (await env.inventory.fetch("items/sku-1")).status);
    try { await fetch("https://example.com/"); } catch (e) { console.log("fetch:", e.message); }
    return new Response("ran");
  }
}`

// TestAttackLinkCarriesNoGrants: a shared link is someone else's request.
// A user who kept their API key for the tab opens links that ask for
// grants (allowOutbound in every form, capabilities the key holds, as a
// list, a string, twice, beside env and secrets, under __proto__) and
// presses Run: the page must not have ticked them, so the link author's
// code runs with no network and no capability; the service sees nothing.
// The Link button leaves grants out of the address too.
func TestAttackLinkCarriesNoGrants(t *testing.T) {
	cg := startCapGateway(t)
	browser := newBrowser(t)
	ctx := tab(t, browser, cg.url+"/playground")
	setKey(t, ctx, cg.key)
	run(t, ctx, chromedp.Click(chromedp.CSS("#remember")))
	links := []map[string]any{
		{"code": grantCode, "allowOutbound": true, "capabilities": []string{"inventory"}},
		{"code": grantCode, "allowOutbound": []string{"*"}},
		{"code": grantCode, "allowOutbound": []string{"example.com", "*.example.com"}, "capabilities": []string{"inventory", "inventory"}},
		{"code": grantCode, "allowOutbound": "true", "capabilities": "inventory"},
		{"code": grantCode, "env": map[string]any{"NAME": "kept"}, "secrets": map[string]string{"TOKEN": "from-the-link"}, "allowOutbound": true, "capabilities": []string{"inventory"}},
		{"code": grantCode, "__proto__": map[string]any{"allowOutbound": true, "capabilities": []string{"inventory"}}},
		{"code": grantCode, "language": "javascript", "timeoutMs": 5000, "capabilities": []string{"inventory"}},
	}
	for i, link := range links {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			data, _ := json.Marshal(link)
			url := fmt.Sprintf("%s/playground?link=%d#r=%s", cg.url, i, base64.RawURLEncoding.EncodeToString(data))
			run(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(".cm-content")))
			eval[bool](t, ctx, capsAnswered)
			if got := eval[[]string](t, ctx, capsOffered); len(got) != 1 {
				t.Fatalf("with the kept key the page offers %q, want [inventory] (the key was not kept?)", got)
			}
			ticked := eval[[]string](t, ctx, `[...document.querySelectorAll("#caps input:checked")].map((c) => c.value)`)
			outbound := eval[string](t, ctx, `document.getElementById("outbound").value + "|" + document.getElementById("hosts").value`)
			if len(ticked) != 0 || outbound != "false|" {
				t.Errorf("link %s loaded with capabilities %q and allowOutbound %q ticked, want none", data, ticked, outbound)
			}
			if c := text(t, ctx, "#curl"); strings.Contains(c, "allowOutbound") || strings.Contains(c, "capabilities") || strings.Contains(c, "from-the-link") {
				t.Errorf("the request the page would send holds grants or the link's secret:\n%s", c)
			}
			if state := runAndWait(t, ctx); state != "success" {
				t.Fatalf("Run: result %q (%s), want success", state, text(t, ctx, "#result"))
			}
			// Without allowOutbound the fetch fails in the guest, unrecorded,
			// or is recorded as denied; never attempted.
			if r := text(t, ctx, "#result"); strings.Contains(r, "capability inventory") ||
				strings.Contains(r, "GET https://example.com/") && !strings.Contains(r, "GET https://example.com/ denied") {
				t.Errorf("result %q, want no capability call and no fetch attempted", r)
			}
			eval[chromedp.Void](t, ctx, `document.getElementById("share").click()`)
			shared, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(eval[string](t, ctx, `location.hash`), "#r="))
			for _, grant := range []string{"allowOutbound", "capabilities", "secrets", "__proto__"} {
				if strings.Contains(string(shared), grant) {
					t.Errorf("Link wrote %s, want no %s", shared, grant)
				}
			}
		})
	}
	if calls := cg.calls(); len(calls) != 0 {
		t.Errorf("the capability's service got %d calls from links, want 0", len(calls))
	}
	noCSPViolations(t, ctx)
}

// TestLinkKeepsTheRequest: what a link may carry comes back when it is
// opened: the code, language, env and timeout.
func TestLinkKeepsTheRequest(t *testing.T) {
	srv := httptest.NewServer(playground.Handler(playground.Options{}))
	t.Cleanup(srv.Close)
	browser := newBrowser(t)
	ctx := tab(t, browser, shareLink(srv.URL, map[string]any{"code": "const x: number = 1;", "language": "typescript",
		"env": map[string]any{"NAME": "kept"}, "timeoutMs": 1234}))
	got := eval[string](t, ctx, `[document.getElementById("language").value, document.getElementById("env").value.replace(/\s/g, ""),
  document.getElementById("timeout").value, document.querySelector(".cm-content").textContent].join("|")`)
	if want := `typescript|{"NAME":"kept"}|1234|const x: number = 1;`; got != want {
		t.Errorf("fields from the link = %q, want %q", got, want)
	}
}
