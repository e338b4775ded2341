package main

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"
)

// TestOwnAddresses checks which addresses serve keeps guests from for each
// kind of listen address: an IP, a wildcard, and a name.
func TestOwnAddresses(t *testing.T) {
	t.Parallel()
	resolved, err := net.DefaultResolver.LookupIPAddr(t.Context(), "localhost")
	if err != nil || len(resolved) == 0 {
		t.Fatalf("this machine does not resolve localhost: %v", err)
	}
	var localhost []string
	for _, a := range resolved {
		localhost = append(localhost, a.IP.String())
	}
	tests := []struct {
		listen string
		want   []string // every one of these, and nothing that is not an address
	}{
		{"127.0.0.1:8080", []string{"127.0.0.1"}},
		{"[::1]:0", []string{"::1"}},
		{"localhost:0", localhost},
		{"LOCALHOST:8080", localhost},
		{":0", []string{"127.0.0.1"}},
		{"0.0.0.0:8080", []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			t.Parallel()
			got, err := ownAddresses(t.Context(), tt.listen)
			if err != nil {
				t.Fatalf("ownAddresses(%q) = %v", tt.listen, err)
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("ownAddresses(%q) = %v, want it to hold %s", tt.listen, got, w)
				}
			}
			for _, g := range got {
				if net.ParseIP(g) == nil {
					t.Errorf("ownAddresses(%q) holds %q, not an address", tt.listen, g)
				}
			}
			if len(got) != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
				t.Errorf("ownAddresses(%q) = %v, want each address once", tt.listen, got)
			}
		})
	}
}

// TestOwnAddressesRefusesWhatCannotBeListenedOn: a name that does not
// resolve, or no port, is an error, not an empty deny list.
func TestOwnAddressesRefusesWhatCannotBeListenedOn(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"no-such-host.invalid:8080", "127.0.0.1", "localhost"} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		got, err := ownAddresses(ctx, listen)
		cancel()
		if err == nil {
			t.Errorf("ownAddresses(%q) = %v, want an error", listen, got)
		}
	}
}
