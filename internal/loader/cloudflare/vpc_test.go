package cloudflare_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
)

const (
	billingService   = "0199295b-b3ac-7760-8246-bca40877b3e9"
	analyticsService = "0199295b-b3ac-7760-8246-bca40877b3ea"
)

// TestDeployVPCServices: each capability reached through a Workers VPC
// service becomes a vpc_service binding of the shim, VPC_<name> with the
// service's id, on the first upload and on every version after it; the
// dry run and the output name them; a binding without an id or for a name
// no capability may have is refused before any call.
func TestDeployVPCServices(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	cfg.VPCServices = map[string]string{"billing": billingService, "analytics": analyticsService}
	want := map[string]string{"VPC_analytics": analyticsService, "VPC_billing": billingService}

	var plan bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, true, &plan); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"name": "VPC_billing"`, `"service_id": "` + billingService + `"`, `"type": "vpc_service"`, `"name": "VPC_analytics"`} {
		if !strings.Contains(plan.String(), w) {
			t.Errorf("dry run lacks %s:\n%s", w, plan.String())
		}
	}

	var out bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatalf("Deploy = %v\n%s", err, out.String())
	}
	s := f.Script(script)
	if !maps.Equal(s.VPCServices, want) {
		t.Errorf("the upload's vpc_service bindings = %v, want %v", s.VPCServices, want)
	}
	bindings, _ := json.Marshal(s.Metadata["bindings"])
	tail := `{"name":"VPC_analytics","service_id":"` + analyticsService + `","type":"vpc_service"},{"name":"VPC_billing","service_id":"` + billingService + `","type":"vpc_service"}]`
	if !strings.HasSuffix(string(bindings), tail) {
		t.Errorf("bindings = %s\nwant them to end with the two VPC bindings in name order: %s", bindings, tail)
	}
	if !strings.Contains(out.String(), "SHIM_SECRET, VPC_analytics and VPC_billing)") {
		t.Errorf("output does not name the VPC bindings:\n%s", out.String())
	}

	// A later deploy uploads a version: it carries them too, and one
	// capability fewer drops its binding.
	delete(cfg.VPCServices, "analytics")
	out.Reset()
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatalf("second Deploy = %v\n%s", err, out.String())
	}
	s = f.Script(script)
	if v := s.Versions[len(s.Versions)-1]; len(s.Versions) != 2 || !maps.Equal(v.VPCServices, map[string]string{"VPC_billing": billingService}) {
		t.Errorf("versions %d, the new one's vpc_service bindings %v; want 2, VPC_billing only", len(s.Versions), v.VPCServices)
	}

	for name, vpc := range map[string]map[string]string{
		"no id":             {"billing": ""},
		"upper-case name":   {"Billing": billingService},
		"a name with a dot": {"billing.x": billingService},
		"empty name":        {"": billingService},
	} {
		f, cfg := newFake(t, nil)
		cfg.VPCServices = vpc
		if err := cloudflare.Deploy(t.Context(), cfg, false, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "VPC service binding") {
			t.Errorf("%s: Deploy = %v, want the binding refused", name, err)
		}
		if calls := f.Calls(); len(calls) != 0 {
			t.Errorf("%s: deploy called the API: %v", name, calls)
		}
	}
}
