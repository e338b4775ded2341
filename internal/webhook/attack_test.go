package webhook

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestAttackCallbackSpellings aims callbacks at a loopback receiver in
// spellings beyond the plain ones: Unicode forms that the HTTP
// client folds to an address (fullwidth and circled digits, other dots),
// the unspecified addresses, trailing dots, zero-padded and mixed-base
// numbers, IPv4-compatible, NAT64 and 6to4 forms, zones, escapes. Each is
// refused at submission (422) and by Deliver before any attempt, and the
// receiver never sees a request.
func TestAttackCallbackSpellings(t *testing.T) {
	t.Parallel()
	srv, hits := counting(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	hosts := []string{
		"１２７.０.０.１", "①②⑦.⓪.⓪.①", "127．0．0．1", "127。0。0。1", "１２７。０。０。１", "ｌｏｃａｌｈｏｓｔ",
		"localhost。", "⑯⑨.②⑤④.⑯⑨.②⑤④", "１０.０.０.１", "２１３０７０６４３３", "０ｘ７ｆ.１",
		"[::]", "[::ffff:0.0.0.0]", "0", "0x0", "00.0.0.0", "127.000.000.001", "0x7f000001", "017700000001",
		"127.0.1", "0x7F.0.0.1", "127.0.0.1.", "localhost.", "2130706433.", "0177.1",
		"[0:0:0:0:0:ffff:127.0.0.1]", "[::ffff:7f00:0001]", "[0000::1]", "[::127.0.0.1]",
		"[64:ff9b::127.0.0.1]", "[2002:7f00:1::]", "[fe80::1]", "[::1%25lo]", "[::ffff:127.0.0.1%25eth0]",
		"xn--localhost", "LocalHost", "localhost%2e", "127.0.0.1%00", "%31%32%37.0.0.1", "[::1].",
	}
	d := New(Options{Resolver: fakeResolver{}, Timeout: 2 * time.Second, MaxRetryTime: 3 * time.Second})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	for _, h := range hosts {
		u := fmt.Sprintf("http://%s:%d/hook", h, port)
		if err := ValidateCallbackURL(u, Reach{}); err == nil {
			t.Errorf("ValidateCallbackURL(%q, false) = nil, want refused", u)
		}
		res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret})
		if res.Delivered || len(res.Attempts) != 0 {
			t.Errorf("Deliver(%q) = %+v, want refused before any attempt", u, res)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback receiver got %d requests, want 0", n)
	}
}

// TestAttackCallbackIDNStillAllowed: folding is only for the check; a real
// internationalised public name is still accepted.
func TestAttackCallbackIDNStillAllowed(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://bücher.example/cb", "https://xn--bcher-kva.example/cb", "https://例え.jp/cb"} {
		if err := ValidateCallbackURL(u, Reach{}); err != nil {
			t.Errorf("ValidateCallbackURL(%q, false) = %v, want nil", u, err)
		}
	}
}
