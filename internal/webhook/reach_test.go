package webhook

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/egress"
)

// TestPrivateRangesAreDenyRanges: what allow_private opens is named from
// the deny list of guest requests, range for range, so the two never
// disagree on what a range is.
func TestPrivateRangesAreDenyRanges(t *testing.T) {
	t.Parallel()
	deny := map[netip.Prefix]bool{}
	for _, r := range egress.Ranges() {
		deny[r.Prefix] = true
	}
	for p := range privateRanges {
		if !deny[p] {
			t.Errorf("privateRanges has %s, which worker/src/deny-ranges.json does not list", p)
		}
	}
	for _, p := range linkLocalRanges {
		if !deny[p] {
			t.Errorf("linkLocalRanges has %s, which worker/src/deny-ranges.json does not list", p)
		}
	}
}

func TestReachCheckAddr(t *testing.T) {
	t.Parallel()
	cidrs := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, c := range s {
			p, err := ParseAllowCIDR(c)
			if err != nil {
				t.Fatalf("ParseAllowCIDR(%q) = %v", c, err)
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name    string
		reach   Reach
		allowed []string
		refused []string
	}{
		{"public only", Reach{},
			[]string{"93.184.215.14", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.215.14", "8.8.8.8"},
			[]string{"127.0.0.1", "::1", "10.0.0.1", "fd12::1", "100.64.0.1", "169.254.169.254", "168.63.129.16", "0.0.0.0", "::", "64:ff9b::808:808"}},
		{"allow_private", Reach{AllowPrivate: true},
			[]string{"127.0.0.1", "127.255.0.9", "::1", "10.0.0.1", "172.31.255.255", "192.168.9.9", "fd12::1", "fc00::1", "100.64.0.1", "100.127.255.254", "::ffff:10.0.0.1", "8.8.8.8"},
			[]string{"169.254.169.254", "169.254.0.1", "fe80::1", "100.100.100.200", "fd00:ec2::254", "fd20:ce::254", "168.63.129.16",
				"0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1", "192.0.2.1", "64:ff9b::a00:1", "::a00:1", "2002:a00:1::"}},
		{"a private subnet alone", Reach{AllowCIDRs: cidrs("10.20.0.0/16")},
			[]string{"10.20.0.1", "10.20.255.255", "8.8.8.8"},
			[]string{"10.21.0.1", "127.0.0.1", "192.168.0.1"}},
		{"the metadata address by itself", Reach{AllowPrivate: true, AllowCIDRs: cidrs("169.254.169.254")},
			[]string{"169.254.169.254", "::ffff:169.254.169.254"},
			[]string{"169.254.169.253", "169.254.170.2", "64:ff9b::a9fe:a9fe"}},
		{"link-local does not open the metadata in it", Reach{AllowCIDRs: cidrs("169.254.0.0/16", "fe80::/10")},
			[]string{"169.254.1.1", "fe80::1"},
			[]string{"169.254.169.254", "169.254.170.2", "169.254.0.23"}},
		{"shared space does not open the metadata in it", Reach{AllowCIDRs: cidrs("100.64.0.0/10", "fc00::/7")},
			[]string{"100.64.0.1", "100.100.100.199", "fd12::1"},
			[]string{"100.100.100.200", "fd00:ec2::254", "fd20:ce::254"}},
		{"NAT64 opens only what it reaches", Reach{AllowCIDRs: cidrs("64:ff9b::/96")},
			[]string{"64:ff9b::808:808", "64:ff9b::5db8:d70e"},
			[]string{"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::a00:1"}},
		{"NAT64 with allow_private", Reach{AllowPrivate: true, AllowCIDRs: cidrs("64:ff9b::/96")},
			[]string{"64:ff9b::808:808", "64:ff9b::a00:1"},
			[]string{"64:ff9b::a9fe:a9fe", "64:ff9b::6464:64c8"}},
		{"an Azure platform address by itself", Reach{AllowCIDRs: cidrs("168.63.129.16/32")},
			[]string{"168.63.129.16"}, []string{"169.254.169.254"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, a := range tt.allowed {
				if err := tt.reach.checkAddr(netip.MustParseAddr(a)); err != nil {
					t.Errorf("%+v.checkAddr(%s) = %v, want nil", tt.reach, a, err)
				}
			}
			for _, a := range tt.refused {
				if err := tt.reach.checkAddr(netip.MustParseAddr(a)); err == nil {
					t.Errorf("%+v.checkAddr(%s) = nil, want refused", tt.reach, a)
				}
			}
		})
	}
}

func TestParseAllowCIDR(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want: the prefix, or part of the error
		ok       bool
	}{
		{"10.0.0.0/8", "10.0.0.0/8", true},
		{" 10.20.0.0/16 ", "10.20.0.0/16", true},
		{"169.254.169.254", "169.254.169.254/32", true},
		{"169.254.169.254/32", "169.254.169.254/32", true},
		{"fd00:ec2::254", "fd00:ec2::254/128", true},
		{"fe80::/10", "fe80::/10", true},
		{"64:ff9b::/96", "64:ff9b::/96", true},
		{"100.100.100.200/32", "100.100.100.200/32", true},
		{"168.63.129.16", "168.63.129.16/32", true},
		{"10.0.0.1/8", "did you mean 10.0.0.0/8?", false},
		{"0.0.0.0/0", "not within one non-public range", false},
		{"::/0", "not within one non-public range", false},
		{"100.0.0.0/8", "not within one non-public range", false},
		{"8.8.8.0/24", "public addresses need no listing", false},
		{"10.0.0.0/7", "not within one non-public range", false},
		{"::ffff:10.0.0.0/104", "write it as 10.0.0.0/8", false},
		{"fe80::1%eth0", "zone", false},
		{"10.0.0.0/33", "not a CIDR", false},
		{"ten.example.com", "not a CIDR", false},
		{"", "not a CIDR", false},
	}
	for _, tt := range tests {
		p, err := ParseAllowCIDR(tt.in)
		switch {
		case tt.ok && (err != nil || p.String() != tt.want):
			t.Errorf("ParseAllowCIDR(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseAllowCIDR(%q) = %v, %v; want an error saying %q", tt.in, p, err, tt.want)
		}
	}
}

// TestAllowCIDRsDelivers: an operator who lists the metadata address by
// itself reaches it (a receiver routed there), and a name resolving to a
// listed subnet is reached without allow_private; local names are let
// through to be resolved once a range is listed.
func TestAllowCIDRsDelivers(t *testing.T) {
	t.Parallel()
	srv, hits := counting(t, nil)
	meta, _ := ParseAllowCIDR("169.254.169.254")
	subnet, _ := ParseAllowCIDR("10.20.0.0/16")
	reach := Reach{AllowCIDRs: []netip.Prefix{meta, subnet}}
	d := New(Options{Reach: reach, Resolver: fakeResolver{"hooks": addrs("10.20.3.4"), "other.corp.example.com": addrs("10.30.0.1")},
		MaxRetryTime: 2 * time.Second, Backoff: backoff.Policy{Min: time.Hour, Max: time.Hour}})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	routeEverywhere(d, srv)
	for _, u := range []string{"http://169.254.169.254/latest/", "http://0xa9fea9fe/", "http://hooks:8080/cb"} {
		if err := ValidateCallbackURL(u, reach); err != nil {
			t.Errorf("ValidateCallbackURL(%q) = %v, want nil", u, err)
		}
		if res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret}); !res.Delivered {
			t.Errorf("Deliver(%q) = %+v, want delivered", u, res)
		}
	}
	for _, u := range []string{"http://10.30.0.1/", "http://127.0.0.1/", "http://169.254.169.253/"} {
		if err := ValidateCallbackURL(u, reach); err == nil {
			t.Errorf("ValidateCallbackURL(%q) = nil, want refused", u)
		}
	}
	if res := d.Deliver(t.Context(), Delivery{URL: "http://other.corp.example.com/", Body: []byte("{}"), Secret: testSecret}); res.Delivered {
		t.Errorf("Deliver(to an unlisted subnet) = %+v, want refused", res)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("receiver got %d callbacks, want 3", n)
	}
}
