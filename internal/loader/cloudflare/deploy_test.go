package cloudflare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/worker"
)

// fakeCloudflare plays the Cloudflare API for the real cloudflare-go client.
type fakeCloudflare struct {
	mu       sync.Mutex
	calls    []string
	upload   map[string]part // multipart parts of the script upload, by name
	metadata map[string]any
	bodies   map[string]string // JSON bodies of other calls, by "METHOD path"
	fail     func(method, path string) (int, string)
}

type part struct {
	filename, contentType string
	data                  []byte
}

func (f *fakeCloudflare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := r.Method + " " + r.URL.Path
	f.calls = append(f.calls, call)
	if r.Header.Get("Authorization") != "Bearer test-token" {
		http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, http.StatusUnauthorized)
		return
	}
	if f.fail != nil {
		if status, body := f.fail(r.Method, r.URL.Path); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, body)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "PUT" && r.URL.Path == "/accounts/acct-1/workers/scripts/dw-shim":
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			http.Error(w, `{"success":false,"errors":[{"code":1,"message":"not multipart"}]}`, 400)
			return
		}
		f.upload = map[string]part{}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			// The raw filename: Part.FileName would drop "guest/".
			_, disposition, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			f.upload[p.FormName()] = part{filename: disposition["filename"], contentType: p.Header.Get("Content-Type"), data: data}
		}
		_ = json.Unmarshal(f.upload["metadata"].data, &f.metadata)
		fmt.Fprint(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"dw-shim"}}`)
	case r.Method == "POST" && r.URL.Path == "/accounts/acct-1/workers/scripts/dw-shim/subdomain":
		body, _ := io.ReadAll(r.Body)
		f.bodies[call] = string(body)
		fmt.Fprint(w, `{"success":true,"errors":[],"messages":[],"result":{"enabled":true,"previews_enabled":false}}`)
	case r.Method == "GET" && r.URL.Path == "/accounts/acct-1/workers/subdomain":
		fmt.Fprint(w, `{"success":true,"errors":[],"messages":[],"result":{"subdomain":"team"}}`)
	case r.Method == "POST" && r.URL.Path == "/zones/zone-9/workers/routes":
		body, _ := io.ReadAll(r.Body)
		f.bodies[call] = string(body)
		fmt.Fprint(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"r1","pattern":"shim.example.com/*","script":"dw-shim"}}`)
	default:
		http.Error(w, `{"success":false,"errors":[{"code":7003,"message":"no route"}]}`, 404)
	}
}

func newFakeCloudflare(t *testing.T) (*fakeCloudflare, cloudflare.DeployConfig) {
	f := &fakeCloudflare{bodies: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, cloudflare.DeployConfig{
		AccountID: "acct-1", APIToken: "test-token", ScriptName: "dw-shim",
		ShimSecret: strings.Repeat("s", 40), BaseURL: srv.URL + "/", MaxRetries: -1,
	}
}

func TestDeployUploadsTheShim(t *testing.T) {
	t.Parallel()
	f, cfg := newFakeCloudflare(t)
	var out bytes.Buffer
	if err := cloudflare.Deploy(context.Background(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	date, _ := worker.CompatibilityDate()
	if f.metadata["main_module"] != "index.js" || f.metadata["compatibility_date"] != date {
		t.Errorf("metadata = %v, want main_module index.js and compatibility_date %s", f.metadata, date)
	}
	bindings, _ := json.Marshal(f.metadata["bindings"])
	want := `[{"name":"LOADER","type":"worker_loader"},{"name":"SHIM_SECRET","text":"` + cfg.ShimSecret + `","type":"secret_text"}]`
	if string(bindings) != want {
		t.Errorf("bindings = %s\nwant %s", bindings, want)
	}
	if ct := f.upload["metadata"].contentType; ct != "application/json" {
		t.Errorf("metadata part content type = %q", ct)
	}
	for _, m := range worker.Modules {
		p, ok := f.upload[m.Name]
		src, _ := worker.Files.ReadFile(m.Path)
		wantType := map[worker.ModuleKind]string{
			worker.ModuleES:   "application/javascript+module",
			worker.ModuleText: "text/plain",
			worker.ModuleJSON: "application/json",
		}[m.Kind]
		if !ok || p.filename != m.Name || p.contentType != wantType || !bytes.Equal(p.data, src) {
			t.Errorf("part %s: present %v, filename %q, type %q, %d bytes; want the module as %s", m.Name, ok, p.filename, p.contentType, len(p.data), wantType)
		}
	}
	if len(f.upload) != len(worker.Modules)+1 {
		t.Errorf("upload has %d parts, want metadata and %d modules", len(f.upload), len(worker.Modules))
	}
	if f.bodies["POST /accounts/acct-1/workers/scripts/dw-shim/subdomain"] != `{"enabled":true}` {
		t.Errorf("subdomain call body = %q", f.bodies["POST /accounts/acct-1/workers/scripts/dw-shim/subdomain"])
	}
	if !strings.Contains(out.String(), "https://dw-shim.team.workers.dev") {
		t.Errorf("output does not give the shim's URL:\n%s", out.String())
	}
	if strings.Contains(out.String(), cfg.ShimSecret) {
		t.Error("output contains the shim secret")
	}
}

func TestDeployToARoute(t *testing.T) {
	t.Parallel()
	f, cfg := newFakeCloudflare(t)
	cfg.Route, cfg.ZoneID = "shim.example.com/*", "zone-9"
	var out bytes.Buffer
	if err := cloudflare.Deploy(context.Background(), cfg, false, &out); err != nil {
		t.Fatal(err)
	}
	if got := f.bodies["POST /zones/zone-9/workers/routes"]; got != `{"pattern":"shim.example.com/*","script":"dw-shim"}` {
		t.Errorf("route body = %q", got)
	}
	for _, c := range f.calls {
		if strings.HasSuffix(c, "/subdomain") {
			t.Errorf("with a route, deploy still called %s", c)
		}
	}
}

func TestDeployDryRun(t *testing.T) {
	t.Parallel()
	f, cfg := newFakeCloudflare(t)
	var out bytes.Buffer
	if err := cloudflare.Deploy(context.Background(), cfg, true, &out); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 {
		t.Errorf("dry run called the API: %v", f.calls)
	}
	for _, want := range []string{"worker_loader", "LOADER", "SHIM_SECRET", "[REDACTED]", "index.js", "guest/__dw_wrapper.js", "text/plain"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), cfg.ShimSecret) {
		t.Error("dry run prints the shim secret")
	}
}

func TestDeployErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string
		status int
		body   string
		want   []string
	}{
		{"no worker loaders", "test-token", 400, `{"success":false,"errors":[{"code":10021,"message":"binding LOADER of type worker_loader is invalid"}]}`, []string{"10021", "Worker Loaders", "Paid"}},
		{"bad token", "wrong-token", 0, "", []string{"401", "CLOUDFLARE_API_TOKEN"}},
		{"forbidden", "test-token", 403, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, []string{"403", "Workers Scripts"}},
		{"server error", "test-token", 502, `{"success":false,"errors":[{"code":10013,"message":"upstream"}]}`, []string{"502", "try again later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, cfg := newFakeCloudflare(t)
			cfg.APIToken = tt.token
			if tt.status != 0 {
				f.fail = func(method, path string) (int, string) {
					if method == "PUT" {
						return tt.status, tt.body
					}
					return 0, ""
				}
			}
			err := cloudflare.Deploy(context.Background(), cfg, false, io.Discard)
			if err == nil {
				t.Fatal("Deploy succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDeployNeedsCredentials(t *testing.T) {
	t.Parallel()
	err := cloudflare.Deploy(context.Background(), cloudflare.DeployConfig{ScriptName: "x", ShimSecret: "short"}, false, io.Discard)
	for _, want := range []string{"CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "shim_secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Deploy without credentials = %v, want it to name %s", err, want)
		}
	}
}
