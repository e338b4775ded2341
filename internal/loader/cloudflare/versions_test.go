package cloudflare_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare/cftest"
)

// latest is the script's current deployment in the fake.
func latest(t *testing.T, f *cftest.Fake) cftest.Deployment {
	t.Helper()
	s := f.Script(script)
	if s == nil || len(s.Deployments) == 0 {
		t.Fatal("no deployment")
	}
	return s.Deployments[len(s.Deployments)-1]
}

// TestDeployGradualRollout: a first deploy makes the Worker (100%); the
// next uploads a version and deploys it to the asked share beside the
// stable version, verified by its own version id (the override header
// reaches it though the old version takes most traffic); deploying again
// warns that it replaces the gradual rollout; a rollback deploys an old
// version to 100% without uploading, and is verified as that version.
func TestDeployGradualRollout(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	first := latest(t, f).Versions[0].VersionID

	cfg.Percentage = 10
	var out bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	d := latest(t, f)
	s := f.Script(script)
	second := s.Versions[len(s.Versions)-1].ID
	if len(d.Versions) != 2 || d.Versions[0] != (cftest.DeploymentTarget{VersionID: second, Percentage: 10}) ||
		d.Versions[1] != (cftest.DeploymentTarget{VersionID: first, Percentage: 90}) {
		t.Errorf("deployment %+v, want %s at 10%% and %s at 90%%", d, second, first)
	}
	if !strings.Contains(out.String(), "version "+second+" answered") {
		t.Errorf("the deploy did not check the new version %s:\n%s", second, out.String())
	}

	cfg.Percentage = 0
	out.Reset()
	if err := cloudflare.Deploy(t.Context(), cfg, true, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "warning: the shim is in a gradual rollout ("+second+" 10%, "+first+" 90%); this deploy would replace it") {
		t.Errorf("the dry run does not warn of the gradual rollout:\n%s", out.String())
	}
	out.Reset()
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	warn := strings.Index(out.String(), "warning: the shim is in a gradual rollout")
	if warn < 0 || warn > strings.Index(out.String(), "uploaded version") {
		t.Errorf("the deploy does not warn before replacing the gradual rollout:\n%s", out.String())
	}
	if d := latest(t, f); len(d.Versions) != 1 || d.Versions[0].Percentage != 100 {
		t.Errorf("deployment %+v, want one version at 100%%", d)
	}

	cfg.RollbackTo = first
	out.Reset()
	before := len(f.Script(script).Versions)
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	if d := latest(t, f); len(d.Versions) != 1 || d.Versions[0] != (cftest.DeploymentTarget{VersionID: first, Percentage: 100}) || len(f.Script(script).Versions) != before {
		t.Errorf("rollback: deployment %+v, %d versions (was %d); want %s at 100%%, nothing uploaded", d, len(f.Script(script).Versions), before, first)
	}
	if !strings.Contains(out.String(), "version "+first+" answered") {
		t.Errorf("the rollback did not check version %s:\n%s", first, out.String())
	}
}

// TestDeployRolloutRefusals: a share out of range, a gradual first deploy,
// a rollback of a Worker never deployed or with a share, all refused
// before anything is written.
func TestDeployRolloutRefusals(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*cloudflare.DeployConfig){
		"percentage 101":        func(c *cloudflare.DeployConfig) { c.Percentage = 101 },
		"percentage -5":         func(c *cloudflare.DeployConfig) { c.Percentage = -5 },
		"gradual first deploy":  func(c *cloudflare.DeployConfig) { c.Percentage = 50 },
		"rollback of nothing":   func(c *cloudflare.DeployConfig) { c.RollbackTo = "ver-1" },
		"rollback with a share": func(c *cloudflare.DeployConfig) { c.RollbackTo, c.Percentage = "ver-1", 20 },
	} {
		f, cfg := newFake(t, nil)
		change(&cfg)
		if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err == nil || f.Writes() != 0 {
			t.Errorf("%s: Deploy = %v after %d writes, want an error and none", name, err, f.Writes())
		}
	}
}

// TestDeployVerifiesTheNewVersion: a shim that answers as another version
// (the old one, still taking the traffic) or names none fails the deploy:
// the check passes only when the version the deploy made answers.
func TestDeployVerifiesTheNewVersion(t *testing.T) {
	t.Parallel()
	for answered, want := range map[string]string{"ver-old": "version ver-old answered, not the deployed", "": "without its version id"} {
		stale := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if answered != "" {
				w.Header().Set("X-Shim-Version", answered)
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer stale.Close()
		_, cfg := newFake(t, nil)
		cfg.URL, cfg.HTTPClient, cfg.VerifyTimeout = stale.URL, nil, 500*time.Millisecond
		err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("shim answering as %q: Deploy = %v, want %q", answered, err, want)
		}
	}
}

// TestDeployKeepsObservability: a redeploy uploads a version, which leaves
// the script's settings, so observability an operator turned on stays on.
func TestDeployKeepsObservability(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	f.SetObservability(script, true)
	if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !f.Script(script).Observability {
		t.Error("a redeploy turned the shim's observability off")
	}
}

// TestDeployCustomDomain: with cloudflare.custom_domain the shim is
// attached to that hostname (Cloudflare making its DNS record and
// certificate), taken off workers.dev, checked at https://<domain>; a second
// deploy leaves the domain; one serving another Worker is refused before any
// write; a domain together with a route is refused.
func TestDeployCustomDomain(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	cfg.CustomDomain, cfg.ZoneID = "shim.example.com", zone
	for i := range 2 {
		var out bytes.Buffer
		if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
			t.Fatalf("deploy %d: %v", i+1, err)
		}
		if !strings.Contains(out.String(), "set cloudflare.url to https://shim.example.com\n") {
			t.Errorf("deploy %d output:\n%s", i+1, out.String())
		}
	}
	d := f.Domains()
	if len(d) != 1 || d[0].Hostname != "shim.example.com" || d[0].Service != script || !d[0].DNSRecord || !d[0].Certificate {
		t.Errorf("domains = %+v, want shim.example.com serving %s with its DNS record and certificate", d, script)
	}
	if f.Script(script).DevEnabled {
		t.Error("the shim is on workers.dev beside its Custom Domain")
	}

	other, cfg2 := newFake(t, nil)
	cfg2.CustomDomain, cfg2.ZoneID = "shim.example.com", zone
	other.AddDomain("shim.example.com", "billing")
	if err := cloudflare.Deploy(t.Context(), cfg2, false, io.Discard); err == nil || !strings.Contains(err.Error(), `serves the Worker "billing"`) || other.Writes() != 0 {
		t.Errorf("Deploy onto another Worker's domain = %v after %d writes, want a refusal and none", err, other.Writes())
	}
	cfg2.Route = "shim.example.com/*"
	if err := cloudflare.Deploy(t.Context(), cfg2, false, io.Discard); err == nil || !strings.Contains(err.Error(), "set one") {
		t.Errorf("Deploy with a domain and a route = %v, want a refusal", err)
	}
}

// TestDeployRouteNeedsProxiedDNS: a route's host without a proxied DNS
// record receives no traffic: deploy warns (in the dry run too) before the
// change, naming the host and the Custom Domain alternative; a proxied
// record silences it.
func TestDeployRouteNeedsProxiedDNS(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		record, proxied, warn bool
	}{
		"no record":            {false, false, true},
		"a record not proxied": {true, false, true},
		"a proxied record":     {true, true, false},
	} {
		f, cfg := newFake(t, nil)
		cfg.Route, cfg.ZoneID = "shim.example.com/*", zone
		if tc.record {
			f.AddDNSRecord("shim.example.com", tc.proxied)
		}
		f.AddDNSRecord("other.example.com", true)
		for _, dry := range []bool{true, false} {
			var out bytes.Buffer
			if err := cloudflare.Deploy(t.Context(), cfg, dry, &out); err != nil {
				t.Fatalf("%s (dry run %v): %v", name, dry, err)
			}
			warned := strings.Contains(out.String(), "warning: shim.example.com has no proxied DNS record in zone zone-9") &&
				strings.Contains(out.String(), "cloudflare.custom_domain")
			if warned != tc.warn {
				t.Errorf("%s (dry run %v): warned %v, want %v:\n%s", name, dry, warned, tc.warn, out.String())
			}
		}
	}
}
