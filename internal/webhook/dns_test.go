package webhook

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// dnsServer is a real DNS server on loopback (UDP) answering A and AAAA
// queries from a table, NXDOMAIN for any other name; silent names get no
// answer at all. resolver returns Go's own resolver (the pure Go one, as
// the gateway's default resolver is on Linux) sending every query to it:
// the lookup, its errors and their text are those of a real resolution,
// only the server is the test's.
type dnsServer struct {
	addr   string
	names  map[string][]netip.Addr
	silent map[string]bool
}

func startDNS(t *testing.T, names map[string][]netip.Addr, silent ...string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &dnsServer{addr: pc.LocalAddr().String(), names: map[string][]netip.Addr{}, silent: map[string]bool{}}
	for n, a := range names {
		s.names[strings.ToLower(n)] = a
	}
	for _, n := range silent {
		s.silent[strings.ToLower(n)] = true
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer := s.answer(buf[:n]); answer != nil {
				_, _ = pc.WriteTo(answer, from)
			}
		}
	}()
	return s
}

func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", s.addr)
	}}
}

// answer builds the reply to one query, or nil to stay silent.
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	name := strings.ToLower(strings.Join(labels, "."))
	if s.silent[name] {
		return nil
	}
	addrs, known := s.names[name]
	var answers [][]byte
	for _, a := range addrs {
		if (qtype == 1 && a.Is4()) || (qtype == 28 && a.Is6()) {
			rr := []byte{0xc0, 12} // the question's name
			rr = binary.BigEndian.AppendUint16(rr, qtype)
			rr = binary.BigEndian.AppendUint16(rr, 1) // IN
			rr = binary.BigEndian.AppendUint32(rr, 60)
			rr = binary.BigEndian.AppendUint16(rr, uint16(a.BitLen()/8))
			answers = append(answers, append(rr, a.AsSlice()...))
		}
	}
	flags := uint16(0x8180) // a response, recursion desired and available
	if !known {
		flags |= 3 // NXDOMAIN
	}
	out := append([]byte{}, q[0:2]...)
	out = binary.BigEndian.AppendUint16(out, flags)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(answers)))
	out = append(out, 0, 0, 0, 0)
	out = append(out, question...)
	for _, rr := range answers {
		out = append(out, rr...)
	}
	return out
}

// TestDNSServer shows the test server answers Go's resolver as a real one
// does, so the tests that use it test real resolutions.
func TestDNSServer(t *testing.T) {
	t.Parallel()
	s := startDNS(t, map[string][]netip.Addr{"both.example.com": addrs("192.0.2.7", "2001:db8::7")})
	got, err := s.resolver().LookupNetIP(t.Context(), "ip", "both.example.com")
	if err != nil || len(got) != 2 {
		t.Errorf("LookupNetIP(both.example.com) = %v, %v; want both addresses", got, err)
	}
	_, err = s.resolver().LookupNetIP(t.Context(), "ip", "nowhere.example.com")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("LookupNetIP(nowhere.example.com) = %v, want not found", err)
	}
}
