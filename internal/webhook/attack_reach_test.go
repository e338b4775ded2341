package webhook

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/backoff"
)

// routeEverywhere makes every connection d makes reach srv, whatever
// address it was resolved and checked for: the socket-level check runs on
// that address, then the connection goes to srv, as if srv were there. A
// request reaching srv is one the checks let through: there is no real
// receiver at 169.254.169.254 in a test, and this stands in for one.
func routeEverywhere(d *Deliverer, srv *httptest.Server) {
	d.dialer.connect = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := d.dialer.control(network, addr, nil); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
}

// metadataSpellings are link-local, cloud metadata and other special
// addresses in the spellings a URL reads as them: decimal, hexadecimal,
// octal, mixed and short forms, Unicode digits and dots, trailing dots,
// IPv4-mapped, IPv4-compatible, SIIT, NAT64 (well-known and local), 6to4,
// zones, and the metadata addresses inside the ranges allow_private opens.
var metadataSpellings = []string{
	// 169.254.169.254, every way a URL can say it
	"169.254.169.254", "2852039166", "0xa9fea9fe", "0XA9FEA9FE", "025177524776", "0xa9.0xfe.0xa9.0xfe",
	"0251.0376.0251.0376", "169.254.43518", "169.16689662", "0251.254.169.254", "0xa9.254.0251.0xfe",
	"169.254.169.254.", "2852039166.", "169.254.169.0254", "１６９.２５４.１６９.２５４", "169。254。169。254",
	"⑯⑨.②⑤④.⑯⑨.②⑤④", "169．254．169．254",
	"[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[0:0:0:0:0:ffff:a9fe:a9fe]", "[::FFFF:A9FE:A9FE]",
	"[::169.254.169.254]", "[::ffff:0:a9fe:a9fe]", "[64:ff9b::169.254.169.254]", "[64:ff9b::a9fe:a9fe]",
	"[64:ff9b:1::a9fe:a9fe]", "[2002:a9fe:a9fe::1]", "[2001:0:4136:e378:8000:63bf:5601:5601]",
	// other metadata and platform addresses
	"169.254.170.2", "2852039170", "169.254.170.23", "169.254.0.23", "100.100.100.200", "1684301000",
	"0x646464c8", "[::ffff:100.100.100.200]", "168.63.129.16", "2822734096", "192.0.0.192",
	"[fd00:ec2::254]", "[fd00:ec2:0:0:0:0:0:254]", "[FD00:EC2::254]", "[fd00:ec2::23]", "[fd20:ce::254]",
	// link-local
	"169.254.0.1", "169.254.255.254", "[fe80::1]", "[fe80::a9fe:a9fe%25eth0]", "[febf::1]", "[::ffff:169.254.1.1]",
	// unspecified, broadcast, multicast, reserved, and their IPv6 forms
	"0.0.0.0", "0", "0x0", "0.0", "[::]", "[::ffff:0.0.0.0]", "[::ffff:0:0]", "255.255.255.255", "4294967295",
	"0xffffffff", "224.0.0.1", "239.255.255.250", "240.0.0.1", "[ff02::1]", "[ff05::2]", "[::ffff:224.0.0.1]",
	"[64:ff9b::e000:1]", "[::ffff:255.255.255.255]", "[2002:e000:1::]",
	// special-purpose ranges nobody's receiver is in
	"192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1", "192.88.99.1", "[100::1]",
	"[2001:db8::1]", "[2001:2::1]", "[3fff::1]", "[5f00::1]", "[fec0::1]",
}

// metadataNames resolve to those addresses, as a name the tenant controls
// (or an internal one) can.
var metadataNames = map[string][]netip.Addr{
	"meta.example.com":         addrs("169.254.169.254"),
	"ecs.example.com":          addrs("169.254.170.2"),
	"meta6.example.com":        addrs("fd00:ec2::254"),
	"gcp6.example.com":         addrs("fd20:ce::254"),
	"alibaba.example.com":      addrs("100.100.100.200"),
	"azure.example.com":        addrs("168.63.129.16"),
	"mapped.example.com":       addrs("::ffff:169.254.169.254"),
	"nat64.example.com":        addrs("64:ff9b::a9fe:a9fe"),
	"compat.example.com":       addrs("::a9fe:a9fe"),
	"sixtofour.example.com":    addrs("2002:a9fe:a9fe::"),
	"ll6.example.com":          addrs("fe80::1"),
	"ll4.example.com":          addrs("169.254.7.7"),
	"unspecified.example.com":  addrs("0.0.0.0"),
	"unspecified6.example.com": addrs("::"),
	"multicast.example.com":    addrs("224.0.0.251"),
	"broadcast.example.com":    addrs("255.255.255.255"),
	"reserved.example.com":     addrs("240.1.2.3"),
	"mixed.example.com":        addrs("10.0.0.5", "169.254.169.254"),
	"mixed6.example.com":       addrs("fd12:3456::1", "fd00:ec2::254"),
	"metadata.google.internal": addrs("169.254.169.254"),
	"metadata":                 addrs("169.254.169.254"),
}

// insideNames resolve to addresses allow_private opens: they must still be
// reached, so that the refusals above are the reach's doing.
var insideNames = map[string][]netip.Addr{
	"receiver.corp.example.com": addrs("10.0.0.5"),
	"loop.corp.example.com":     addrs("127.0.0.1"),
	"ula.corp.example.com":      addrs("fd12:3456::1"),
	"cgnat.corp.example.com":    addrs("100.64.1.1"),
	"mapped.corp.example.com":   addrs("::ffff:192.168.1.10"),
	"hooks":                     addrs("172.16.0.9"),
}

// TestAttackAllowPrivateNeverReachesMetadata: with callbacks.allow_private
// on, a key aims its callback at link-local, cloud metadata and other
// special addresses in every spelling, and at names resolving to them
// (through a resolver the test controls, and through Go's own resolver
// asking a real DNS server). None is reached: a spelled address is refused
// at submission (422) and before any attempt, a name when it resolves;
// loopback, private, unique local and shared addresses are still reached.
func TestAttackAllowPrivateNeverReachesMetadata(t *testing.T) {
	t.Parallel()
	resolvers := map[string]func(t *testing.T, names map[string][]netip.Addr) Resolver{
		"table resolver": func(_ *testing.T, names map[string][]netip.Addr) Resolver { return fakeResolver(names) },
		"real resolver":  func(t *testing.T, names map[string][]netip.Addr) Resolver { return startDNS(t, names).resolver() },
	}
	for name, newResolver := range resolvers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			names := map[string][]netip.Addr{}
			for n, a := range metadataNames {
				names[n] = a
			}
			for n, a := range insideNames {
				names[n] = a
			}
			srv, hits := counting(t, nil)
			d := New(allowingPrivate(Options{Resolver: newResolver(t, names), Timeout: 5 * time.Second, MaxRetryTime: 2 * time.Second,
				Backoff: backoff.Policy{Min: time.Hour, Max: time.Hour}}))
			t.Cleanup(func() { _ = d.Close(context.Background()) })
			routeEverywhere(d, srv)
			var hosts []string
			if name == "table resolver" {
				hosts = append(hosts, metadataSpellings...)
			}
			for n := range metadataNames {
				hosts = append(hosts, n)
			}
			for _, h := range hosts {
				u := "http://" + h + ":8080/hook?token=t"
				_, isName := metadataNames[h]
				if err := validatePrivate(u); (err == nil) != isName {
					t.Errorf("ValidateCallbackURL(%q, allow_private) = %v, want refused: %v", u, err, !isName)
				}
				res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret})
				if res.Delivered || len(res.Attempts) > 1 {
					t.Errorf("Deliver(%q) with allow_private = %+v, want refused", u, res)
				}
				for _, a := range res.Attempts {
					if !strings.HasPrefix(a.Error, "refused") {
						t.Errorf("Deliver(%q) attempt error %q, want a refusal", u, a.Error)
					}
				}
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("%d callbacks aimed at metadata and special addresses were sent, want 0", n)
			}
			for h := range insideNames {
				u := "http://" + h + ":8080/hook"
				if res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret}); !res.Delivered {
					t.Errorf("Deliver(%q) with allow_private = %+v, want delivered", u, res)
				}
			}
			if n, want := hits.Load(), int32(len(insideNames)); n != want {
				t.Errorf("receiver got %d callbacks to private names, want %d", n, want)
			}
		})
	}
}

// TestAttackControlUnderAllowPrivate: the check just before connect(2)
// refuses the same addresses with allow_private on, and lets private ones
// through.
func TestAttackControlUnderAllowPrivate(t *testing.T) {
	t.Parallel()
	d := privateDialer()
	for _, a := range []string{
		"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[fd00:ec2::254]:80", "[fd20:ce::254]:80",
		"100.100.100.200:80", "168.63.129.16:443", "169.254.170.2:80", "[fe80::1%25lo]:80", "[fe80::1]:80",
		"0.0.0.0:80", "[::]:80", "255.255.255.255:80", "224.0.0.1:80", "[ff02::1]:80", "[64:ff9b::a9fe:a9fe]:80",
		"[::a9fe:a9fe]:80", "[2002:a9fe:a9fe::]:80", "240.0.0.1:80", "192.0.2.1:80",
	} {
		if err := d.control("tcp", a, nil); err == nil {
			t.Errorf("control(%s) with allow_private = nil, want refused", a)
		}
	}
	for _, a := range []string{"127.0.0.1:80", "[::1]:80", "10.1.2.3:80", "172.20.0.1:80", "192.168.0.1:80", "[fd12::1]:80", "100.64.0.1:80", "[::ffff:10.0.0.1]:80", "93.184.215.14:443"} {
		if err := d.control("tcp", a, nil); err != nil {
			t.Errorf("control(%s) with allow_private = %v, want nil", a, err)
		}
	}
}

// resolvConfServers are the name servers of this machine: an attempt's
// error must never name one.
func resolvConfServers(t *testing.T) []string {
	data, _ := os.ReadFile("/etc/resolv.conf")
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// TestAttackAttemptErrorsSayOnlyWhatFailed: the attempts kept in the
// tenant's record say what failed in the tenant's terms. They never name
// the gateway's DNS server, the address a name resolved to (an internal
// name's map of the network), certificate names, or Go's error text; the
// full error is kept for the gateway's log.
func TestAttackAttemptErrorsSayOnlyWhatFailed(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedPort := closed.Listener.Addr().(*net.TCPAddr).Port
	closed.Close()
	hold := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a closed connection only after the body
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(hold) }) // runs first
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(failing.Close)
	hangup, _ := rawReceiver(t, func(c net.Conn) bool { return false })
	port := func(s *httptest.Server) int { return s.Listener.Addr().(*net.TCPAddr).Port }

	dns := startDNS(t, map[string][]netip.Addr{
		"db.corp.example.com":     addrs("127.0.0.1"),
		"pool.corp.example.com":   addrs("127.0.0.1", "::1"),
		"meta.corp.example.com":   addrs("169.254.169.254"),
		"rebind.example.com":      addrs("127.0.0.1"),
		"slow.corp.example.com":   addrs("127.0.0.1"),
		"tls.corp.example.com":    addrs("127.0.0.1"),
		"example.com":             addrs("127.0.0.1"), // a name the test certificate is for
		"plain.corp.example.com":  addrs("127.0.0.1"),
		"busy.corp.example.com":   addrs("127.0.0.1"),
		"hangup.corp.example.com": addrs("127.0.0.1"),
	}, "silent.corp.example.com")
	never := append([]string{"lookup", "dial tcp", "127.0.0.1", "::1", "169.254", "x509", "tls:", "EOF", dns.addr, ":53"}, resolvConfServers(t)...)
	trusting := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	tests := []struct {
		name, url string
		private   bool
		tls       bool // trust the test server's certificate authority
		want      string
		cause     string // in the full error
	}{
		{"name that does not resolve", "http://nowhere.corp.example.com/cb", true, false, "could not resolve host", "no such host"},
		{"resolver that does not answer", "http://silent.corp.example.com/cb", true, false, "timed out: no answer within 1s", "deadline exceeded"},
		{"internal name, port closed", fmt.Sprintf("http://db.corp.example.com:%d/cb", closedPort), true, false, "connection refused", "127.0.0.1"},
		{"internal name with two addresses, port closed", fmt.Sprintf("http://pool.corp.example.com:%d/cb", closedPort), true, false, "connection refused", "refused"},
		{"internal name resolving to metadata", "http://meta.corp.example.com/cb", true, false, textNameRefused, "169.254.169.254"},
		{"public name rebinding to loopback", fmt.Sprintf("http://rebind.example.com:%d/cb", port(failing)), false, false, textNameRefused, "127.0.0.1"},
		{"receiver that never answers", fmt.Sprintf("http://slow.corp.example.com:%d/cb", port(hanging)), true, false, "timed out: no answer within 1s", ""},
		{"certificate from an unknown authority", fmt.Sprintf("https://example.com:%d/cb", port(tlsSrv)), true, false, "TLS handshake failed: certificate not trusted", "x509"},
		{"certificate for other names", fmt.Sprintf("https://tls.corp.example.com:%d/cb", port(tlsSrv)), true, true, "TLS handshake failed: certificate not valid for the host", "x509"},
		{"https to a plain HTTP receiver", fmt.Sprintf("https://plain.corp.example.com:%d/cb", port(plain)), true, false, "TLS handshake failed: the receiver does not speak TLS", "HTTP"},
		{"connection closed without an answer", strings.Replace(hangup, "127.0.0.1", "hangup.corp.example.com", 1), true, false, "connection closed before an answer", "EOF"},
		{"receiver answering 503", fmt.Sprintf("http://busy.corp.example.com:%d/cb", port(failing)), true, false, "answered 503", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{Resolver: dns.resolver(), Timeout: time.Second, MaxRetryTime: 3 * time.Second,
				Backoff: backoff.Policy{Min: time.Hour, Max: time.Hour}}
			if tt.private {
				o = allowingPrivate(o)
			}
			if tt.tls {
				o.TLSConfig = trusting
			}
			d := New(o)
			t.Cleanup(func() { _ = d.Close(context.Background()) })
			res := d.Deliver(t.Context(), Delivery{URL: tt.url, Body: []byte("{}"), Secret: testSecret})
			if res.Delivered || len(res.Attempts) != 1 {
				t.Fatalf("Deliver(%s) = %+v, want one failed attempt", tt.url, res)
			}
			a := res.Attempts[0]
			if a.Error != tt.want {
				t.Errorf("Deliver(%s) attempt error = %q, want %q", tt.url, a.Error, tt.want)
			}
			for _, s := range never {
				if strings.Contains(a.Error, s) || strings.Contains(res.Reason, s) {
					t.Errorf("Deliver(%s) attempt error %q, reason %q: names %q", tt.url, a.Error, res.Reason, s)
				}
			}
			if tt.cause != "" && (causeOf(a) == nil || !strings.Contains(causeOf(a).Error(), tt.cause)) {
				t.Errorf("Deliver(%s) attempt cause = %v, want the full error for the log, with %q", tt.url, causeOf(a), tt.cause)
			}
			if c := causeOf(a); c != nil && strings.Contains(c.Error(), "/cb") {
				t.Errorf("Deliver(%s) attempt cause %q carries the URL", tt.url, c)
			}
		})
	}
}
