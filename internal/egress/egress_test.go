package egress

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
)

type vectors struct {
	Hosts []struct {
		Host    string `json:"host"`
		Blocked bool   `json:"blocked"`
	} `json:"hosts"`
	Patterns []struct {
		Pattern string `json:"pattern"`
		Valid   bool   `json:"valid"`
	} `json:"patterns"`
	Matches []struct {
		Pattern string `json:"pattern"`
		Host    string `json:"host"`
		Match   bool   `json:"match"`
	} `json:"matches"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/hosts.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, tt := range loadVectors(t).Hosts {
		err := CheckHost(tt.Host)
		if (err != nil) != tt.Blocked {
			t.Errorf("CheckHost(%q) = %v, want blocked %v", tt.Host, err, tt.Blocked)
		}
	}
}

// TestEveryRangeHasAVector fails when a range is added to
// worker/src/deny-ranges.json without a blocked host inside it in
// testdata/hosts.json (worker/test/egress.test.js checks the same).
func TestEveryRangeHasAVector(t *testing.T) {
	t.Parallel()
	var addrs []netip.Addr
	for _, tt := range loadVectors(t).Hosts {
		if addr, ok := vectorAddr(tt.Host); ok && tt.Blocked {
			addrs = append(addrs, addr)
		}
	}
	for _, r := range Ranges() {
		found := false
		for _, a := range addrs {
			found = found || r.Prefix.Contains(a)
		}
		if !found {
			t.Errorf("no blocked host in testdata/hosts.json lies in %s (%s)", r.CIDR, r.Reason)
		}
	}
}

// vectorAddr reads the address a vector's host names, if it names one.
func vectorAddr(host string) (netip.Addr, bool) {
	host = strings.ToLower(host)
	if addr, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return addr, true
	}
	if endsInNumber(host) {
		return parseIPv4(host)
	}
	return netip.Addr{}, false
}

func TestParseRangesRefusesBadData(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		``,
		`{}`,
		`{"ranges": []}`,
		`{"ranges": [{"cidr": "10.0.0.0/8"}]}`,
		`{"ranges": [{"cidr": "10.0.0.1/8", "reason": "host bits set"}]}`,
		`{"ranges": [{"cidr": "10.0.0.0", "reason": "no length"}]}`,
		`{"ranges": [{"cidr": "::ffff:0:0:1/96", "reason": "host bits set"}]}`,
		`{"ranges": [{"cidr": "fc00::/129", "reason": "too long"}]}`,
	} {
		if r, err := parseRanges([]byte(data)); err == nil {
			t.Errorf("parseRanges(%s) = %v, want an error", data, r)
		}
	}
}

func TestValidPattern(t *testing.T) {
	t.Parallel()
	for _, tt := range loadVectors(t).Patterns {
		err := ValidPattern(tt.Pattern)
		if (err == nil) != tt.Valid {
			t.Errorf("ValidPattern(%q) = %v, want valid %v", tt.Pattern, err, tt.Valid)
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	for _, tt := range loadVectors(t).Matches {
		if got := Matches(tt.Pattern, tt.Host); got != tt.Match {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.Pattern, tt.Host, got, tt.Match)
		}
	}
}

// FuzzCheckHost checks that no host makes CheckHost panic, and that a host
// it lets through is never a blocked address in any spelling.
func FuzzCheckHost(f *testing.F) {
	for _, tt := range loadVectors(f).Hosts {
		f.Add(tt.Host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if CheckHost(host) != nil {
			return
		}
		if addr, ok := parseIPv4(host); ok && endsInNumber(host) {
			for _, r := range blocked {
				if r.Prefix.Contains(addr) {
					t.Fatalf("CheckHost(%q) = nil, but it means %s in %s", host, addr, r.CIDR)
				}
			}
		}
	})
}

// FuzzValidPattern checks that a valid pattern never admits a blocked host
// by itself, and that matching never panics.
func FuzzValidPattern(f *testing.F) {
	for _, tt := range loadVectors(f).Patterns {
		f.Add(tt.Pattern, "api.example.com")
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		_ = Matches(pattern, host)
		if ValidPattern(pattern) != nil || pattern == "*" {
			return
		}
		name := pattern
		if len(name) > 2 && name[:2] == "*." {
			name = name[2:]
		}
		if CheckHost(name) != nil {
			t.Fatalf("ValidPattern(%q) = nil, but %q is blocked", pattern, name)
		}
	})
}
