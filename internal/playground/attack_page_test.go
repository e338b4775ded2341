package playground_test

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"

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
