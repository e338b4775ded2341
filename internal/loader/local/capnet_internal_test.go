package local

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestCapabilityNetwork gives the shim a network of its own for the
// capabilities, reaching exactly their hosts' addresses, and none without
// capabilities.
func TestCapabilityNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		urls  []string
		allow []string
	}{
		{"none", nil, nil},
		{"literals", []string{"http://10.0.3.7:9000/api/", "https://[fd00::5]/x/", "http://10.0.3.7:9001/other/"}, []string{"10.0.3.7/32", "fd00::5/128"}},
		{"mapped", []string{"http://[::ffff:10.1.2.3]/"}, []string{"10.1.2.3/32"}},
		{"name", []string{"http://localhost:9000/"}, []string{"127.0.0.1/32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			allow, err := capabilityAllow(tt.urls)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.allow {
				if !slices.Contains(allow, want) {
					t.Errorf("capabilityAllow(%q) = %q, want %s among them", tt.urls, allow, want)
				}
			}
			if tt.allow == nil && allow != nil {
				t.Errorf("capabilityAllow(nil) = %q, want none", allow)
			}
			path, err := writeConfig(t.TempDir(), 0, nil, tt.urls, nil)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			config := string(data)
			has := strings.Contains(config, `(name = "CAPABILITY_NETWORK", service = "capabilities")`)
			if has != (tt.urls != nil) {
				t.Errorf("config binds CAPABILITY_NETWORK: %v, want %v:\n%s", has, tt.urls != nil, config)
			}
			for _, a := range allow {
				if !strings.Contains(config, `"`+a+`"`) {
					t.Errorf("config lacks %s:\n%s", a, config)
				}
			}
			// The shim runs with the flags it is deployed with.
			if !strings.Contains(config, `compatibilityFlags = ["global_fetch_strictly_public"]`) {
				t.Errorf("config lacks the shim's compatibility flags:\n%s", config)
			}
			// The guests' network is unchanged: private addresses denied.
			if !strings.Contains(config, `allow = ["public"]`) || !strings.Contains(config, `"private"`) {
				t.Errorf("the internet network changed:\n%s", config)
			}
		})
	}
	if _, err := capabilityAllow([]string{"http://no-such-host.invalid/"}); err == nil {
		t.Error("capabilityAllow of a name that does not resolve succeeded, want an error")
	}
}

// TestVPCNetworks: each capability reached through a Workers VPC service
// gets a binding of the name it has on Cloudflare, VPC_<name>, to a network
// of its own reaching its address only; a name no capability may have is
// refused.
func TestVPCNetworks(t *testing.T) {
	t.Parallel()
	path, err := writeConfig(t.TempDir(), 0, nil, []string{"http://10.0.3.9/"}, map[string]string{"billing": "http://10.0.3.7:9000/api/", "ledger": "https://[fd00::8]/"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	config := string(data)
	for _, want := range []string{
		`(name = "VPC_billing", service = "vpc-billing")`,
		`(name = "VPC_ledger", service = "vpc-ledger")`,
		"(name = \"vpc-billing\", network = (\n      allow = [\"10.0.3.7/32\"],",
		"(name = \"vpc-ledger\", network = (\n      allow = [\"fd00::8/128\"],",
		`(name = "CAPABILITY_NETWORK", service = "capabilities")`,
	} {
		if !strings.Contains(config, want) {
			t.Errorf("config lacks %s:\n%s", want, config)
		}
	}
	for _, name := range []string{"Billing", "a\"b", "x)", ""} {
		if _, err := writeConfig(t.TempDir(), 0, nil, nil, map[string]string{name: "http://10.0.3.7/"}); err == nil {
			t.Errorf("writeConfig with VPC capability %q succeeded, want it refused", name)
		}
	}
}
