package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers from a table, as DNS under an attacker's control
// could.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// counting is a real receiver on loopback that counts what reaches it.
func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

var testSecret = []byte("s")

// TestRefusedSpellings aims callbacks at the loopback receiver (and other
// non-public addresses) in every spelling: none may reach it, whether the
// URL is refused as written or only once its name is resolved.
func TestRefusedSpellings(t *testing.T) {
	t.Parallel()
	srv, hits := counting(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	resolver := fakeResolver{
		"rebind.example.com":   addrs("127.0.0.1"),
		"v6loop.example.com":   addrs("::1"),
		"mixed.example.com":    addrs("93.184.215.14", "127.0.0.1"),
		"mapped.example.com":   addrs("::ffff:127.0.0.1"),
		"metadata.example.com": addrs("169.254.169.254"),
		"private.example.com":  addrs("10.1.2.3"),
		"nat64.example.com":    addrs("64:ff9b::7f00:1"),
	}
	tests := []struct {
		host         string
		validationOK bool // a name: only its resolution can tell
	}{
		{"127.0.0.1", false}, {"localhost", false}, {"LOCALHOST.", false}, {"[::1]", false},
		{"0x7f.1", false}, {"2130706433", false}, {"0177.0.0.1", false}, {"127.1", false},
		{"0.0.0.0", false}, {"10.0.0.1", false}, {"192.168.1.1", false}, {"172.16.0.1", false},
		{"169.254.169.254", false}, {"[::ffff:127.0.0.1]", false}, {"[::ffff:7f00:1]", false},
		{"[fe80::1%25eth0]", false}, {"[fd00::1]", false}, {"app.localhost", false},
		{"metadata.google.internal", false}, {"callback", false},
		{"rebind.example.com", true}, {"v6loop.example.com", true}, {"mixed.example.com", true},
		{"mapped.example.com", true}, {"metadata.example.com", true}, {"private.example.com", true},
		{"nat64.example.com", true},
	}
	d := New(Options{Resolver: resolver, Timeout: 2 * time.Second, MaxRetryTime: 5 * time.Second})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			u := fmt.Sprintf("http://%s:%d/hook", tt.host, port)
			if err := ValidateCallbackURL(u, Reach{}); (err == nil) != tt.validationOK {
				t.Errorf("ValidateCallbackURL(%q, false) = %v, want error: %v", u, err, !tt.validationOK)
			}
			res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret})
			// A spelling is refused before any attempt; a name, by its
			// one attempt failing to connect.
			wantAttempts := 0
			if tt.validationOK {
				wantAttempts = 1
			}
			if res.Delivered || len(res.Attempts) != wantAttempts || !strings.Contains(res.Reason, "callbacks may not reach") &&
				!strings.Contains(res.Reason, "local or internal host") {
				t.Errorf("Deliver(%q) = %+v, want refused after %d attempts, saying why", u, res, wantAttempts)
			}
			if tt.validationOK && res.Reason != textNameRefused {
				t.Errorf("Deliver(%q) reason = %q, want the connect-time refusal", u, res.Reason)
			}
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("the loopback receiver got %d requests, want 0", n)
		}
	})
}

// TestAllowPrivate: with AllowPrivate the same loopback receiver, by
// address or by a name resolving to it, is reached.
func TestAllowPrivate(t *testing.T) {
	t.Parallel()
	srv, hits := counting(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	resolver := fakeResolver{"receiver.test": addrs("127.0.0.1"), "localhost": addrs("127.0.0.1")}
	d := New(Options{Reach: Reach{AllowPrivate: true}, Resolver: resolver, MaxRetryTime: 5 * time.Second})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	for _, u := range []string{srv.URL, fmt.Sprintf("http://receiver.test:%d/", port), fmt.Sprintf("http://localhost:%d/", port)} {
		if err := ValidateCallbackURL(u, Reach{AllowPrivate: true}); err != nil {
			t.Errorf("ValidateCallbackURL(%q, true) = %v, want nil", u, err)
		}
		if res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret}); !res.Delivered {
			t.Errorf("Deliver(%q) with AllowPrivate = %+v, want delivered", u, res)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

// TestControlRefusesAtConnect: the socket-level check is wired into the
// real net.Dialer, so even a dial that skipped resolution cannot connect
// to a non-public address.
func TestControlRefusesAtConnect(t *testing.T) {
	t.Parallel()
	srv, _ := counting(t, nil)
	d := newDialer(nil, Reach{})
	c, err := d.net.DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, ErrRefusedAddress) {
		t.Errorf("net.Dialer.DialContext(loopback) = %v, want ErrRefusedAddress", err)
	}
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "10.0.0.1:80", "[::ffff:169.254.169.254]:80"} {
		if err := d.control("tcp", a, nil); !errors.Is(err, ErrRefusedAddress) {
			t.Errorf("control(%s) = %v, want ErrRefusedAddress", a, err)
		}
	}
	if err := d.control("tcp", "93.184.215.14:443", nil); err != nil {
		t.Errorf("control(public) = %v, want nil", err)
	}
}

// TestRedirectToLoopbackNotFollowed: a public receiver (a name resolving
// to a public address, the connection routed to a test server) answers
// with a redirect to loopback in several spellings; nothing follows it.
func TestRedirectToLoopbackNotFollowed(t *testing.T) {
	t.Parallel()
	inside, hits := counting(t, nil)
	port := inside.Listener.Addr().(*net.TCPAddr).Port
	locations := []string{
		inside.URL + "/", fmt.Sprintf("http://localhost:%d/", port), fmt.Sprintf("http://[::1]:%d/", port),
		fmt.Sprintf("http://2130706433:%d/", port), fmt.Sprintf("http://0x7f.1:%d/", port), "http://169.254.169.254/latest/meta-data/",
	}
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, loc := range locations {
			outside := httptest.NewServer(http.RedirectHandler(loc, code))
			d := publicVia(t, outside)
			res := d.Deliver(t.Context(), Delivery{URL: "http://hooks.example.com/cb", Body: []byte("{}"), Secret: testSecret})
			outside.Close()
			if res.Delivered || len(res.Attempts) != 1 || res.Attempts[0].Status != code || !strings.Contains(res.Reason, "redirects are not followed") {
				t.Errorf("Deliver() redirected %d to %s = %+v, want one attempt ending in %d, not followed", code, loc, res, code)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback receiver got %d requests, want 0", n)
	}
}

// publicVia returns a Deliverer, public addresses only, that resolves
// hooks.example.com to a public address and routes connections to that
// address to srv: the one seam past the address check.
func publicVia(t *testing.T, srv *httptest.Server) *Deliverer {
	t.Helper()
	d := New(Options{Resolver: fakeResolver{"hooks.example.com": addrs("93.184.215.14")}, MaxRetryTime: 5 * time.Second})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	real := d.dialer.connect
	d.dialer.connect = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == "93.184.215.14:80" {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		}
		return real(ctx, network, addr)
	}
	return d
}

// TestPublicViaSeam shows the seam above reaches its server, so the
// redirect test's "not followed" is about redirects, not the route.
func TestPublicViaSeam(t *testing.T) {
	t.Parallel()
	srv, hits := counting(t, nil)
	res := publicVia(t, srv).Deliver(t.Context(), Delivery{URL: "http://hooks.example.com/cb", Body: []byte("{}"), Secret: testSecret})
	if !res.Delivered || hits.Load() != 1 {
		t.Errorf("Deliver() = %+v with %d hits, want delivered once", res, hits.Load())
	}
}
