package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/internal/egress"
)

// Reach says which addresses callbacks may go to. The zero value is public
// addresses only: never one in the deny list guest requests obey
// (worker/src/deny-ranges.json) nor a cloud metadata or platform address
// (metadataRanges), and no local or internal name (localhost, *.internal,
// a single label).
type Reach struct {
	// AllowPrivate also lets callbacks reach loopback (127.0.0.0/8, ::1),
	// private (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16; unique
	// local fc00::/7) and shared (CGNAT, 100.64.0.0/10) addresses, and
	// local names, which are resolved and checked as any name is. It never
	// opens link-local, metadata or other special addresses, nor the
	// metadata addresses inside those ranges (100.100.100.200,
	// fd00:ec2::254, …).
	AllowPrivate bool
	// AllowCIDRs lets callbacks reach the non-public addresses inside each
	// range (see ParseAllowCIDR for what one may be). A range opens an
	// address only if it lies within the narrowest non-public range that
	// holds the address: 169.254.169.254/32 opens the metadata address,
	// 169.254.0.0/16 the rest of link-local but not it, and 100.64.0.0/10
	// shared addresses but not 100.100.100.200.
	AllowCIDRs []netip.Prefix
}

// opensAny reports whether r lets callbacks reach anything non-public: then
// local names are let through to be resolved, and their addresses checked.
func (r Reach) opensAny() bool {
	return r.AllowPrivate || len(r.AllowCIDRs) > 0
}

// addrClass is a range of addresses that are not public: what it is, in
// the words an attempt's error uses (kind), and why, as the operator's log
// says it (reason).
type addrClass struct {
	prefix  netip.Prefix
	kind    string
	reason  string
	private bool // opened by AllowPrivate
}

// Kinds of non-public address, as a tenant reads them.
const (
	kindLoopback  = "loopback"
	kindPrivate   = "private"
	kindShared    = "shared (CGNAT)"
	kindLinkLocal = "link-local"
	kindMetadata  = "cloud metadata"
	kindSpecial   = "special-purpose"
)

// privateRanges are what AllowPrivate opens, each also in the deny list:
// a test checks that they are.
var privateRanges = map[netip.Prefix]string{
	netip.MustParsePrefix("127.0.0.0/8"):    kindLoopback,
	netip.MustParsePrefix("::1/128"):        kindLoopback,
	netip.MustParsePrefix("10.0.0.0/8"):     kindPrivate,
	netip.MustParsePrefix("172.16.0.0/12"):  kindPrivate,
	netip.MustParsePrefix("192.168.0.0/16"): kindPrivate,
	netip.MustParsePrefix("fc00::/7"):       kindPrivate,
	netip.MustParsePrefix("100.64.0.0/10"):  kindShared,
}

// linkLocalRanges are named apart from other special ranges in errors.
var linkLocalRanges = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}

// metadataRanges are the well-known addresses of cloud instance metadata
// and platform services, which hold credentials for the machine the
// gateway runs on. Callbacks never reach them unless allow_cidrs names one
// by itself; some lie inside ranges AllowPrivate opens, one is public.
var metadataRanges = []struct{ cidr, reason string }{
	{"169.254.169.254/32", "instance metadata (AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, …)"},
	{"169.254.170.2/32", "AWS ECS task metadata and credentials"},
	{"169.254.170.23/32", "AWS EKS Pod Identity credentials"},
	{"169.254.0.23/32", "Tencent Cloud metadata"},
	{"100.100.100.200/32", "Alibaba Cloud metadata, inside shared 100.64.0.0/10"},
	{"fd00:ec2::254/128", "AWS instance metadata over IPv6, inside unique local fc00::/7"},
	{"fd00:ec2::23/128", "AWS EKS Pod Identity over IPv6, inside unique local fc00::/7"},
	{"fd20:ce::254/128", "GCP instance metadata over IPv6, inside unique local fc00::/7"},
	{"168.63.129.16/32", "Azure platform services (WireServer), a public address"},
	{"192.0.0.192/32", "Oracle Cloud metadata (classic)"},
}

// classes are every non-public range: the metadata addresses, then the
// deny list of guest requests.
var classes = func() []addrClass {
	var out []addrClass
	for _, m := range metadataRanges {
		out = append(out, addrClass{prefix: netip.MustParsePrefix(m.cidr), kind: kindMetadata, reason: m.reason})
	}
	for _, r := range egress.Ranges() {
		c := addrClass{prefix: r.Prefix, kind: kindSpecial, reason: r.Reason}
		if kind, ok := privateRanges[r.Prefix]; ok {
			c.kind, c.private = kind, true
		} else if slices.Contains(linkLocalRanges, r.Prefix) {
			c.kind = kindLinkLocal
		}
		out = append(out, c)
	}
	return out
}()

// classOf returns the narrowest non-public range holding a; false if a is
// public. a has no zone and is not IPv4-mapped.
func classOf(a netip.Addr) (addrClass, bool) {
	var best addrClass
	found := false
	for _, c := range classes {
		if c.prefix.Contains(a) && (!found || c.prefix.Bits() > best.prefix.Bits()) {
			best, found = c, true
		}
	}
	return best, found
}

// Ranges whose addresses carry an IPv4 address that a translator or tunnel
// reaches: opening one of them opens only the addresses whose IPv4 address
// is open too.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	compatible = netip.MustParsePrefix("::/96")
	siit       = netip.MustParsePrefix("::ffff:0:0:0/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// embeddedIPv4 returns the IPv4 addresses a carries (for 64:ff9b:1::/48,
// read as a /96 NAT64 prefix).
func embeddedIPv4(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	last := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case nat64.Contains(a), nat64Local.Contains(a), compatible.Contains(a), siit.Contains(a):
		return []netip.Addr{last}
	case sixToFour.Contains(a):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
	case teredo.Contains(a):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{netip.AddrFrom4([4]byte(b[4:8])), netip.AddrFrom4(client)}
	}
	return nil
}

// refusal is an address callbacks may not reach. Its Error is for the
// gateway's log; tenantText is what the execution's record says.
type refusal struct {
	addr  netip.Addr
	class addrClass
}

func (e *refusal) Error() string {
	return fmt.Sprintf("%s is in %s (%s)", e.addr, e.class.prefix, e.class.reason)
}

func (e *refusal) Unwrap() error { return ErrRefusedAddress }

// checkAddr returns nil if r lets callbacks reach a, else a *refusal.
func (r Reach) checkAddr(a netip.Addr) error {
	a = a.WithZone("").Unmap() // ::ffff:a.b.c.d connects to a.b.c.d
	c, special := classOf(a)
	switch {
	case !special:
		return nil
	case r.AllowPrivate && c.private:
		return nil
	case r.lists(a, c):
		for _, v4 := range embeddedIPv4(a) {
			if err := r.checkAddr(v4); err != nil {
				return err
			}
		}
		return nil
	}
	return &refusal{addr: a, class: c}
}

// lists reports whether an entry of AllowCIDRs holds a and lies within c.
func (r Reach) lists(a netip.Addr, c addrClass) bool {
	for _, p := range r.AllowCIDRs {
		if p.Contains(a) && p.Bits() >= c.prefix.Bits() {
			return true
		}
	}
	return false
}

// checkHost checks a URL's host as written (and as the HTTP client folds
// it): an address in any spelling must be one r lets callbacks reach; a
// name must not be local or internal, unless r opens non-public addresses
// (a name's addresses are checked when it is resolved).
func (r Reach) checkHost(host string) error {
	for _, h := range []string{host, foldHost(host)} {
		addr, isAddr, err := egress.ParseHost(h)
		switch {
		case err != nil:
			return err
		case isAddr:
			if err := r.checkAddr(addr); err != nil {
				return err
			}
		case !r.opensAny():
			if err := egress.CheckName(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseAllowCIDR reads one entry of callbacks.allow_cidrs: a CIDR
// ("10.20.0.0/16") or a single address ("169.254.169.254"), IPv4 written as
// IPv4, no zone, no host bits, lying within one non-public range (a range
// over public addresses opens nothing: they need no listing).
func ParseAllowCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (such as 10.20.0.0/16) or an address", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be listed", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its length: did you mean %s?", s, p.Masked())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.Prefix{}, fmt.Errorf("%q is IPv4 written as IPv6: write it as %s", s, netip.PrefixFrom(a.Unmap(), p.Bits()-96))
	}
	if _, ok := enclosing(p); !ok {
		return netip.Prefix{}, fmt.Errorf("%q is not within one non-public range (such as 10.0.0.0/8 or 169.254.169.254/32): list each range you mean; public addresses need no listing", s)
	}
	return p, nil
}

// enclosing returns the narrowest non-public range that holds all of p.
func enclosing(p netip.Prefix) (addrClass, bool) {
	var best addrClass
	found := false
	for _, c := range classes {
		if c.prefix.Bits() <= p.Bits() && c.prefix.Contains(p.Addr()) && (!found || c.prefix.Bits() > best.prefix.Bits()) {
			best, found = c, true
		}
	}
	return best, found
}

// ErrRefusedAddress is wrapped by every connection refused because it
// would reach an address callbacks may not reach.
var ErrRefusedAddress = errors.New("callback refused")
