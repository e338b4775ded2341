package cloudflare_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare/cftest"
)

// failUpload makes the fake answer the script upload with a.
func failUpload(a cftest.Answer) func(*cftest.Options) {
	return func(o *cftest.Options) {
		o.Fail = func(r *http.Request) *cftest.Answer {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/workers/scripts/") {
				return &a
			}
			return nil
		}
	}
}

// TestDeployErrors: each refusal of the Cloudflare API
// becomes what to do about it; none is blamed on the plan but the plan's.
func TestDeployErrors(t *testing.T) {
	t.Parallel()
	const syntax = "Uncaught SyntaxError: Unexpected token '}'\n  at index.js:12:3 (code: 10021)"
	tests := []struct {
		name     string
		opt      func(*cftest.Options)
		route    bool
		want     []string
		not      []string
		noWrites bool // refused before anything was changed
	}{
		{name: "plan, 10195", opt: func(o *cftest.Options) { o.Loader = cftest.LoaderNeedsPlan },
			want: []string{"10195", "Dynamic Workers", "Workers Paid plan", "switch to a paid plan"}},
		{name: "plan, older 10021 naming worker_loader", opt: func(o *cftest.Options) { o.Loader = cftest.LoaderLegacy },
			want: []string{"10021", "binding LOADER of type worker_loader is invalid", "Workers Paid plan"}},
		{name: "validation 10021", opt: failUpload(cftest.Answer{Status: 400, Code: 10021, Message: syntax}),
			want: []string{"did not accept the shim (code 10021)", syntax}, not: []string{"Paid", "Dynamic Workers"}},
		{name: "no workers.dev subdomain, lookup 10007", opt: func(o *cftest.Options) { o.Subdomain = "" },
			want: []string{"10007", "no workers.dev subdomain", "dashboard", "PUT accounts/<account>/workers/subdomain"}, noWrites: true},
		{name: "no workers.dev subdomain, upload 10063", opt: func(o *cftest.Options) { o.Subdomain = "" }, route: true,
			want: []string{"10063", "no workers.dev subdomain", "dashboard", "PUT accounts/<account>/workers/subdomain"}},
		{name: "token without scripts permission", opt: func(o *cftest.Options) { o.NoScripts = true },
			want: []string{"403", "Account · Workers Scripts · Edit"}, not: []string{"Routes"}, noWrites: true},
		{name: "token without routes permission", opt: func(o *cftest.Options) { o.NoRoutes = true }, route: true,
			want: []string{"403", "list the zone's Worker routes", "Zone · Workers Routes · Edit"}, not: []string{"Scripts"}, noWrites: true},
		{name: "token invalid", opt: func(o *cftest.Options) { o.Token = "another" },
			want: []string{"CLOUDFLARE_API_TOKEN", "6003"}, noWrites: true},
		{name: "rate limited", opt: failUpload(cftest.Answer{Status: 429, Code: 971, Message: "Please wait and consider throttling your request speed", RetryAfter: "30"}),
			want: []string{"429", "rate-limiting", "after 30 s"}},
		{name: "server error", opt: failUpload(cftest.Answer{Status: 502, Code: 10013, Message: "An unknown error has occurred"}),
			want: []string{"502", "An unknown error has occurred", "try again later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, cfg := newFake(t, tt.opt)
			if tt.route {
				cfg.Route, cfg.ZoneID = "shim.example.com/*", zone
			}
			err := cloudflare.Deploy(t.Context(), cfg, false, io.Discard)
			if err == nil {
				t.Fatal("Deploy succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q says %q", err, n)
				}
			}
			if tt.noWrites && f.Writes() != 0 {
				t.Errorf("deploy wrote before failing: %v", f.Calls())
			}
		})
	}
}

// TestDeployNeedsCredentials: every missing setting is named at once.
func TestDeployNeedsCredentials(t *testing.T) {
	t.Parallel()
	err := cloudflare.Deploy(t.Context(), cloudflare.DeployConfig{ScriptName: "x", ShimSecret: "short"}, false, io.Discard)
	for _, want := range []string{"CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "shim_secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Deploy without credentials = %v, want it to name %s", err, want)
		}
	}
}
