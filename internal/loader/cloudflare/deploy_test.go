package cloudflare_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare/cftest"
	"github.com/dynamic-workers/gateway/worker"
)

const (
	acct   = "acct-1"
	zone   = "zone-9"
	script = "dw-shim"
	token  = "test-token"
)

// newFake starts a fake account with a workers.dev subdomain and Dynamic
// Workers, changed by opt, and a deploy configuration for it.
func newFake(t *testing.T, opt func(*cftest.Options)) (*cftest.Fake, cloudflare.DeployConfig) {
	opts := cftest.Options{Token: token, AccountID: acct, ZoneID: zone, Subdomain: "team"}
	if opt != nil {
		opt(&opts)
	}
	f := cftest.New(t, opts)
	return f, cloudflare.DeployConfig{
		AccountID: acct, APIToken: token, ScriptName: script,
		ShimSecret: strings.Repeat("s", 40), BaseURL: f.BaseURL(), MaxRetries: -1,
		VerifyTimeout: 30 * time.Second, HTTPClient: f.ShimClient(),
	}
}

func TestDeployUploadsTheShim(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	var out bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	s := f.Script(script)
	date, _ := worker.CompatibilityDate()
	if s.Metadata["main_module"] != "index.js" || s.Metadata["compatibility_date"] != date {
		t.Errorf("metadata = %v, want main_module index.js and compatibility_date %s", s.Metadata, date)
	}
	// Guests' fetches leave through the shim's: strictly public, never
	// straight to an origin in the shim's own zone.
	if flags, _ := json.Marshal(s.Metadata["compatibility_flags"]); !strings.Contains(string(flags), `"global_fetch_strictly_public"`) {
		t.Errorf("compatibility_flags = %s, want global_fetch_strictly_public among them", flags)
	}
	bindings, _ := json.Marshal(s.Metadata["bindings"])
	want := `[{"name":"LOADER","type":"worker_loader"},{"name":"CF_VERSION_METADATA","type":"version_metadata"},{"name":"SHIM_SECRET","text":"` + cfg.ShimSecret + `","type":"secret_text"}]`
	if string(bindings) != want {
		t.Errorf("bindings = %s\nwant %s", bindings, want)
	}
	if ct := s.Parts["metadata"].ContentType; ct != "application/json" {
		t.Errorf("metadata part content type = %q", ct)
	}
	wantType := map[worker.ModuleKind]string{
		worker.ModuleES: "application/javascript+module", worker.ModuleText: "text/plain", worker.ModuleJSON: "application/json",
	}
	for _, m := range worker.Modules {
		p, ok := s.Parts[m.Name]
		src, _ := worker.Files.ReadFile(m.Path)
		if !ok || p.Filename != m.Name || p.ContentType != wantType[m.Kind] || !bytes.Equal(p.Data, src) {
			t.Errorf("part %s: present %v, filename %q, type %q, %d bytes; want the module as %s", m.Name, ok, p.Filename, p.ContentType, len(p.Data), wantType[m.Kind])
		}
	}
	if len(s.Parts) != len(worker.Modules)+1 {
		t.Errorf("upload has %d parts, want metadata and %d modules", len(s.Parts), len(worker.Modules))
	}
	if !s.DevEnabled {
		t.Error("the shim is not on workers.dev after deploy")
	}
	if !strings.Contains(out.String(), "set cloudflare.url to https://dw-shim.team.workers.dev\n") {
		t.Errorf("output does not give the shim's URL:\n%s", out.String())
	}
	if strings.Contains(out.String(), cfg.ShimSecret) {
		t.Error("output contains the shim secret")
	}
}

// TestDeployTwice: a second deploy (CI deploying again) exits 0 and prints
// the URL; it adds no second route and writes nothing but a version and its
// deployment.
func TestDeployTwice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, route, url string
	}{
		{"workers.dev", "", "https://dw-shim.team.workers.dev"},
		{"route", "shim.example.com/*", "https://shim.example.com"},
		{"route with a path", "example.com/shim/*", "https://example.com/shim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, cfg := newFake(t, nil)
			cfg.Route = tt.route
			if tt.route != "" {
				cfg.ZoneID = zone
			}
			for i := range 2 {
				before := f.Writes()
				var out bytes.Buffer
				if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
					t.Fatalf("deploy %d: %v", i+1, err)
				}
				if !strings.Contains(out.String(), "set cloudflare.url to "+tt.url+"\n") {
					t.Errorf("deploy %d output lacks the URL %s:\n%s", i+1, tt.url, out.String())
				}
				if w := f.Writes() - before; i == 1 && w != 2 {
					t.Errorf("second deploy made %d writes, want 2 (a version, its deployment): %v", w, f.Calls())
				}
			}
			if tt.route != "" {
				if r := f.Routes(); len(r) != 1 || r[0].Pattern != tt.route || r[0].Script != script {
					t.Errorf("routes = %+v, want one, %s to %s", r, tt.route, script)
				}
			}
		})
	}
}

// TestDeployRouteOfAnotherWorker: a route with the pattern serving another
// Worker is not taken, and nothing is uploaded.
func TestDeployRouteOfAnotherWorker(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	cfg.Route, cfg.ZoneID = "shim.example.com/*", zone
	f.AddRoute("other.example.com/*", "blog")
	f.AddRoute(cfg.Route, "billing")
	err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `serves the Worker "billing"`) {
		t.Errorf("Deploy = %v, want an error naming the route's Worker", err)
	}
	if f.Writes() != 0 {
		t.Errorf("deploy wrote %v before refusing", f.Calls())
	}
}

// TestDeployRouteRefusesAnEmptyRoute: a route with the pattern and no
// Worker (kept so on purpose: its requests go to the origin) is not taken
// over, as wrangler does not; nothing is written.
func TestDeployRouteRefusesAnEmptyRoute(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	cfg.Route, cfg.ZoneID = "shim.example.com/*", zone
	f.AddRoute(cfg.Route, "")
	err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "serves no Worker") || f.Writes() != 0 {
		t.Errorf("Deploy = %v after %d writes, want a refusal naming the route and no write", err, f.Writes())
	}
	if r := f.Routes(); len(r) != 1 || r[0].Script != "" {
		t.Errorf("routes = %+v, want the route left as it was", r)
	}
}

// TestDeployRemovesStaleRoutes: when cloudflare.route changes, the shim's
// route under the old pattern is removed (after the new one is added);
// routes of other Workers stay.
func TestDeployRemovesStaleRoutes(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	cfg.Route, cfg.ZoneID = "old.example.com/*", zone
	f.AddRoute("blog.example.com/*", "blog")
	if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg.Route = "shim.example.com/*"
	var out bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, true, &out); err != nil || !strings.Contains(out.String(), "would remove the shim's old route old.example.com/*") {
		t.Errorf("dry run = %v:\n%s\nwant it to name the stale route", err, out.String())
	}
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.Routes() {
		got = append(got, r.Pattern+"="+r.Script)
	}
	if strings.Join(got, " ") != "blog.example.com/*=blog shim.example.com/*="+script {
		t.Errorf("routes = %v, want the blog's and the new shim route only", got)
	}
}

// TestDeployRouteTurnsOffWorkersDev: moving from workers.dev to a route
// leaves no workers.dev URL open.
func TestDeployRouteTurnsOffWorkersDev(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg.Route, cfg.ZoneID = "shim.example.com/*", zone
	var out bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	if f.Script(script).DevEnabled {
		t.Errorf("the shim is still on workers.dev after a route deploy:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "workers.dev: turned off") {
		t.Errorf("output does not say workers.dev was turned off:\n%s", out.String())
	}
}

// TestDeployRefusesRoutesTheShimCannotServe: a route pattern without a
// trailing wildcard cannot reach /run, so deploy refuses it.
func TestDeployRefusesRoutesTheShimCannotServe(t *testing.T) {
	t.Parallel()
	for _, route := range []string{"shim.example.com", "shim.example.com/", "example.com/shim", "/*", "exa*mple.com/*"} {
		f, cfg := newFake(t, nil)
		cfg.Route, cfg.ZoneID = route, zone
		err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "cloudflare.route") {
			t.Errorf("Deploy(route %q) = %v, want a cloudflare.route error", route, err)
		}
		if len(f.Calls()) != 0 {
			t.Errorf("route %q: deploy called %v", route, f.Calls())
		}
	}
}

// TestDeployWildcardHostNeedsURL: "*.example.com/*" names no host to check.
func TestDeployWildcardHostNeedsURL(t *testing.T) {
	t.Parallel()
	f, cfg := newFake(t, nil)
	cfg.Route, cfg.ZoneID = "*.example.com/*", zone
	err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "set cloudflare.url") {
		t.Errorf("Deploy = %v, want it to ask for cloudflare.url", err)
	}
	cfg.URL, cfg.HTTPClient = f.PlainShim.URL+"/", nil
	var out bytes.Buffer
	if err := cloudflare.Deploy(t.Context(), cfg, false, &out); err != nil {
		t.Fatalf("with cloudflare.url: %v", err)
	}
	if !strings.Contains(out.String(), "the shim at "+f.PlainShim.URL+" accepts") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestDeployChecksTheShim: deploy exits 0 only once the shim answers a
// signed /verify; a shim holding another secret fails the deploy.
func TestDeployChecksTheShim(t *testing.T) {
	t.Parallel()
	other := cftest.New(t, cftest.Options{Token: token, AccountID: acct, Subdomain: "team"})
	_, otherCfg := newFake(t, nil)
	otherCfg.BaseURL, otherCfg.ShimSecret, otherCfg.HTTPClient = other.BaseURL(), strings.Repeat("o", 40), other.ShimClient()
	if err := cloudflare.Deploy(t.Context(), otherCfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, cfg := newFake(t, nil)
	cfg.URL, cfg.HTTPClient, cfg.VerifyTimeout = other.PlainShim.URL, nil, time.Second
	err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refuses the signature") {
		t.Errorf("Deploy against a shim with another secret = %v, want a signature error", err)
	}
}

// TestDeployRetriesRateLimits: with retries on, cloudflare-go waits out a
// 429's Retry-After and the deploy succeeds.
func TestDeployRetriesRateLimits(t *testing.T) {
	t.Parallel()
	limited := make(chan struct{}, 1)
	limited <- struct{}{}
	f, cfg := newFake(t, func(o *cftest.Options) {
		o.Fail = func(r *http.Request) *cftest.Answer {
			if r.Method != http.MethodPut {
				return nil
			}
			select {
			case <-limited:
				return &cftest.Answer{Status: 429, Code: 971, Message: "Please wait and consider throttling your request speed", RetryAfter: "1"}
			default:
				return nil
			}
		}
	})
	cfg.MaxRetries = 2
	if err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(f.Calls(), "\n"), "PUT /accounts/acct-1/workers/scripts/dw-shim"); n != 2 {
		t.Errorf("%d uploads, want 2 (one limited, one retried): %v", n, f.Calls())
	}
}

// TestDeployDryRun: the plan is printed, the route changes included, the
// secret masked, and nothing is written.
func TestDeployDryRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*cftest.Fake, *cloudflare.DeployConfig)
		want  []string
	}{
		{"workers.dev, new", nil, []string{"workers.dev (now off): would enable it", "https://dw-shim.team.workers.dev"}},
		{"route, new, workers.dev on", func(f *cftest.Fake, cfg *cloudflare.DeployConfig) {
			cfg.Route, cfg.ZoneID = "example.com/shim/*", zone
			f.SetDevEnabled(script, true)
		}, []string{"route example.com/shim/* in zone zone-9: would add it", "workers.dev (now on): would turn it off", "https://example.com/shim"}},
		{"route, there already", func(f *cftest.Fake, cfg *cloudflare.DeployConfig) {
			cfg.Route, cfg.ZoneID = "shim.example.com/*", zone
			f.AddRoute(cfg.Route, script)
		}, []string{"route shim.example.com/* in zone zone-9: unchanged"}},
		{"no credentials", func(_ *cftest.Fake, cfg *cloudflare.DeployConfig) {
			cfg.APIToken = ""
		}, []string{"without credentials the current routes were not read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, cfg := newFake(t, nil)
			if tt.setup != nil {
				tt.setup(f, &cfg)
			}
			var out bytes.Buffer
			if err := cloudflare.Deploy(t.Context(), cfg, true, &out); err != nil {
				t.Fatal(err)
			}
			if f.Writes() != 0 {
				t.Errorf("dry run wrote: %v", f.Calls())
			}
			if cfg.APIToken == "" && len(f.Calls()) != 0 {
				t.Errorf("dry run without credentials called %v", f.Calls())
			}
			want := append([]string{"worker_loader", "LOADER", "SHIM_SECRET", "[REDACTED]", "index.js", "guest/min/__dw_wrapper.js", "text/plain"}, tt.want...)
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("dry run output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), cfg.ShimSecret) {
				t.Error("dry run prints the shim secret")
			}
		})
	}
}
