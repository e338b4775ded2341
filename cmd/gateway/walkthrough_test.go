package main

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare/cftest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// TestRunDeployWalkthrough runs the deploy commands of docs/cloudflare.md's
// walk-through as written, with its example configuration, against a fake
// account (the shim checked at the fake's, cloudflare.url pointed there):
// a dry run, the first deploy, a rollout at 10% and 50%, the newest at
// 100%, and a rollback to the first version. Every version carries the
// binding to ledger's Workers VPC service; the route is added once.
func TestRunDeployWalkthrough(t *testing.T) {
	const zone = "0123456789abcdef0123456789abcdef"
	f := cftest.New(t, cftest.Options{Token: "tok", AccountID: "acct", ZoneID: zone, Subdomain: "team"})
	f.AddDNSRecord("shim.example.com", true)
	base := deployEnv(f, strings.Repeat("w", 64))
	getenv := func(k string) string {
		if k == "BILLING_ACCESS_CLIENT_ID" || k == "BILLING_ACCESS_CLIENT_SECRET" || k == "BILLING_TOKEN" || k == "LEDGER_TOKEN" {
			return "value-of-" + k
		}
		return base(k)
	}
	config := []string{"--config", "../../docs/examples/cloudflare-private.yaml"}
	deploy := func(args ...string) string {
		t.Helper()
		var out, errOut loadertest.Buffer
		if err := run(t.Context(), append(append([]string{"deploy"}, config...), args...), getenv, nil, &out, &errOut); err != nil {
			t.Fatalf("deploy %q: %v\n%s%s", args, err, out.String(), errOut.String())
		}
		if strings.Contains(out.String()+errOut.String(), "value-of-") {
			t.Errorf("deploy %q printed a capability's credential", args)
		}
		return out.String()
	}
	plan := deploy("--dry-run")
	for _, want := range []string{`"name": "VPC_ledger"`, `"type": "vpc_service"`, `"service_id": "0199295b-b3ac-7760-8246-bca40877b3e9"`, "route shim.example.com/* in zone " + zone + ": would add it"} {
		if !strings.Contains(plan, want) {
			t.Errorf("dry run lacks %s:\n%s", want, plan)
		}
	}
	if f.Writes() != 0 {
		t.Errorf("dry run wrote: %v", f.Calls())
	}
	version := regexp.MustCompile(`\(version (\S+) answered\)`)
	out := deploy()
	first := version.FindStringSubmatch(out)
	if first == nil {
		t.Fatalf("the first deploy names no version that answered:\n%s", out)
	}
	if want := `bindings LOADER, CF_VERSION_METADATA, SHIM_SECRET and VPC_ledger), version ` + first[1] + `, deployed to 100%`; !strings.Contains(out, want) {
		t.Errorf("the first deploy's output lacks %q:\n%s", want, out)
	}
	deploy("--percentage", "10")
	deploy("--percentage", "50")
	deploy()
	out = deploy("--rollback-to", first[1])
	if m := version.FindStringSubmatch(out); m == nil || m[1] != first[1] {
		t.Errorf("the rollback's check: %q, want version %s answering\n%s", m, first[1], out)
	}
	s := f.Script("dynamic-workers-shim")
	want := map[string]string{"VPC_ledger": "0199295b-b3ac-7760-8246-bca40877b3e9"}
	if len(s.Versions) != 4 {
		t.Errorf("%d versions, want 4 (the first, 10%%, 50%%, 100%%; the rollback uploads none)", len(s.Versions))
	}
	for _, v := range s.Versions {
		if !maps.Equal(v.VPCServices, want) {
			t.Errorf("version %s has VPC bindings %v, want %v", v.ID, v.VPCServices, want)
		}
	}
	if routes := f.Routes(); len(routes) != 1 || routes[0].Pattern != "shim.example.com/*" || routes[0].Script != "dynamic-workers-shim" {
		t.Errorf("routes = %+v, want shim.example.com/* serving the shim, once", routes)
	}
	if d := s.Deployments[len(s.Deployments)-1]; len(d.Versions) != 1 || d.Versions[0].VersionID != first[1] {
		t.Errorf("deployed now: %+v, want the first version at 100%%", d)
	}
}
