// Package egress decides which hosts guest code may reach. The shim enforces
// the same rules at run time (worker/src/egress.js, reading the same deny
// ranges and checked against the same test vectors); this package validates allowOutbound host lists up front,
// so a request naming a host that can never be reached fails with a clear
// 422 instead of a failure inside the guest.
package egress

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/dynamic-workers/gateway/worker"
)

// Range is one address range guest code never reaches, and why.
type Range struct {
	Prefix netip.Prefix
	CIDR   string // as written in the data file
	Reason string
}

// blocked lists the address ranges guest code never reaches, whatever
// allowOutbound says, read from the shim's own data file
// (worker/src/deny-ranges.json) so the shim and the gateway share one list.
var blocked = mustLoadRanges(worker.DenyRanges)

// Ranges returns the blocked ranges with their reasons.
func Ranges() []Range {
	return append([]Range(nil), blocked...)
}

// Blocked returns the blocked ranges in CIDR notation, for the runtime's
// network configuration.
func Blocked() []string {
	out := make([]string, len(blocked))
	for i, r := range blocked {
		out[i] = r.CIDR
	}
	return out
}

func mustLoadRanges(data []byte) []Range {
	ranges, err := parseRanges(data)
	if err != nil {
		panic("egress: worker/src/deny-ranges.json: " + err.Error())
	}
	return ranges
}

// parseRanges reads the deny-range data file. Each CIDR must be canonical
// (no host bits set) and come with a reason.
func parseRanges(data []byte) ([]Range, error) {
	var file struct {
		Ranges []struct {
			CIDR   string `json:"cidr"`
			Reason string `json:"reason"`
		} `json:"ranges"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, err
	}
	if len(file.Ranges) == 0 {
		return nil, errors.New("no ranges")
	}
	out := make([]Range, len(file.Ranges))
	for i, r := range file.Ranges {
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil {
			return nil, err
		}
		if p != p.Masked() || r.Reason == "" {
			return nil, fmt.Errorf("%q: want a canonical CIDR (%s) and a reason", r.CIDR, p.Masked())
		}
		out[i] = Range{Prefix: p, CIDR: r.CIDR, Reason: r.Reason}
	}
	return out, nil
}

// Errors of CheckHost.
var (
	ErrBlockedAddress = errors.New("not a public address")
	ErrBlockedName    = errors.New("names a local or internal host")
)

// internalSuffixes are name suffixes that only ever resolve inside a network.
var internalSuffixes = []string{".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"}

// CheckHost reports why a URL host (a name, an IPv4 address, or an IPv6
// address with or without brackets) may never be reached, or nil.
func CheckHost(host string) error {
	addr, isAddr, err := ParseHost(host)
	switch {
	case err != nil:
		return err
	case isAddr:
		return checkAddr(addr)
	}
	return CheckName(host)
}

// ParseHost reads a URL host as the address it names: an IPv6 address
// with or without brackets, or IPv4 in any spelling a URL reads as one
// (2130706433, 0x7f.1, 0177.0.0.1, a trailing dot). isAddr is false for a
// name; err (wrapping ErrBlockedAddress) is for a host that is spelled as
// an address but is not a valid one.
func ParseHost(host string) (addr netip.Addr, isAddr bool, err error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	bracketed := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
	if bracketed {
		host = host[1 : len(host)-1]
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr, true, nil
	}
	if bracketed {
		return netip.Addr{}, false, fmt.Errorf("[%s] is not a valid IPv6 address: %w", host, ErrBlockedAddress)
	}
	if endsInNumber(host) {
		// URLs read such hosts as IPv4 in any of its spellings
		// (2130706433, 0x7f.1, 0177.0.0.1): the address they mean.
		addr, ok := parseIPv4(host)
		if !ok {
			return netip.Addr{}, false, fmt.Errorf("%s is not a valid address: %w", host, ErrBlockedAddress)
		}
		return addr, true, nil
	}
	return netip.Addr{}, false, nil
}

// CheckName reports why a host name (not an address) may never be
// reached: a local or internal name, which resolves through the local
// network's own resolver or search domains; or nil.
func CheckName(host string) error {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return fmt.Errorf("empty host: %w", ErrBlockedName)
	}
	if host == "localhost" || !strings.Contains(host, ".") {
		// Single-label names resolve through local search domains.
		return fmt.Errorf("%s %w", host, ErrBlockedName)
	}
	for _, suffix := range internalSuffixes {
		if strings.HasSuffix(host, suffix) {
			return fmt.Errorf("%s %w", host, ErrBlockedName)
		}
	}
	return nil
}

func checkAddr(addr netip.Addr) error {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		if err := checkAddr(addr.Unmap()); err != nil {
			return err
		}
	}
	for _, r := range blocked {
		if r.Prefix.Contains(addr) {
			return fmt.Errorf("%s is in %s (%s): %w", addr, r.CIDR, r.Reason, ErrBlockedAddress)
		}
	}
	return nil
}

// endsInNumber reports whether the last label of host looks numeric, which
// makes the WHATWG URL parser read the whole host as an IPv4 address.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	if last == "" && len(labels) > 1 {
		last = labels[len(labels)-2]
	}
	if last == "" {
		return false
	}
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") && strings.Trim(l[2:], "0123456789abcdef") == "" {
		return true
	}
	return false
}

// parseIPv4 parses host as the WHATWG URL standard's IPv4 parser does: one
// to four parts, each decimal, 0x-hexadecimal or 0-octal, the last filling
// the remaining bytes.
func parseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, part := range parts {
		n, ok := parseIPv4Number(part)
		if !ok {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v := last
	for i, n := range nums[:len(nums)-1] {
		v += n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
		if s == "" {
			return 0, true
		}
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	var n uint64
	for _, c := range s {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 1<<32 {
			return 0, false
		}
	}
	return n, true
}

var labelPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidPattern checks one allowOutbound host pattern: "*" (any public host),
// an exact host name ("api.example.com"), or "*." and a suffix
// ("*.example.com", its subdomains but not itself). IP literals and names
// that can never be reached are refused.
func ValidPattern(p string) error {
	if p == "*" {
		return nil
	}
	name := strings.TrimPrefix(p, "*.")
	if name != strings.ToLower(name) {
		return fmt.Errorf("%q must be lower case", p)
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than a host name can be", p)
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil || endsInNumber(name) {
		if err := CheckHost(name); err != nil {
			return fmt.Errorf("%q can never be reached: %w", p, err)
		}
		if strings.HasPrefix(p, "*.") {
			return fmt.Errorf("%q: a wildcard cannot apply to an address", p)
		}
		return nil
	}
	for _, label := range strings.Split(name, ".") {
		if !labelPattern.MatchString(label) {
			return fmt.Errorf("%q is not a host name or *.suffix pattern", p)
		}
	}
	if err := CheckHost(name); err != nil {
		return fmt.Errorf("%q can never be reached: %w", p, err)
	}
	return nil
}

// Matches reports whether host matches pattern (both lower case).
func Matches(pattern, host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(host, pattern[1:]) && len(host) > len(pattern)-1
	default:
		return host == pattern
	}
}
