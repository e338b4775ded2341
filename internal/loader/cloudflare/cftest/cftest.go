// Package cftest is a fake of the Cloudflare API for tests of `gateway
// deploy`, answering the paths deploy uses as the real API documents them:
// the error envelope {success:false, errors:[{code,message}], messages,
// result}, 409/10020 on a duplicate route pattern, 10195 and 10021 for an
// account without Dynamic Workers, 10063 on upload and 10007 on the
// subdomain lookup for an account without a workers.dev subdomain, 403 per
// missing token permission (scripts vs routes), and whatever a test injects
// (429 with Retry-After, 5xx, a validation error). A second server plays
// the deployed shim: it answers a signed /verify with 204 when the
// signature matches the SHIM_SECRET (or SHIM_SECRET_PREVIOUS) last uploaded.
package cftest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// Loader says how the account answers an upload with a worker_loader binding.
type Loader int

const (
	// LoaderEnabled: Dynamic Workers are on.
	LoaderEnabled Loader = iota
	// LoaderNeedsPlan: the answer since April 2026 (code 10195).
	LoaderNeedsPlan
	// LoaderLegacy: the older answer, a 10021 naming worker_loader.
	LoaderLegacy
)

// Options set up the fake account.
type Options struct {
	Token     string // the one valid API token
	AccountID string
	ZoneID    string
	// Subdomain is the account's workers.dev subdomain; "" for none.
	Subdomain string
	Loader    Loader
	// NoScripts and NoRoutes take away the token's permission Account ·
	// Workers Scripts · Edit and Zone · Workers Routes · Edit.
	NoScripts, NoRoutes bool
	// Fail, if set, is asked first; a non-nil Answer is sent instead.
	Fail func(r *http.Request) *Answer
}

// Answer is an API failure in Cloudflare's envelope.
type Answer struct {
	Status     int
	Code       int
	Message    string
	RetryAfter string // the Retry-After header, if any
}

// Route is a zone's Worker route.
type Route struct {
	ID      string `json:"id"`
	Pattern string `json:"pattern"`
	Script  string `json:"script,omitempty"`
}

// Part is one part of a script upload.
type Part struct {
	Filename, ContentType string
	Data                  []byte
}

// Script is an uploaded Worker: what its last upload (a script upload or
// a version) held, its versions, and its deployments (latest last).
type Script struct {
	Metadata   map[string]any
	Parts      map[string]Part
	DevEnabled bool // served on workers.dev
	Secret     string
	Previous   string // SHIM_SECRET_PREVIOUS, accepted too
	// VPCServices are the upload's vpc_service bindings: binding name to
	// the Workers VPC service's id.
	VPCServices map[string]string
	// Observability is the script's setting; a script upload sets it from
	// its metadata (off when the metadata has none), a version leaves it.
	Observability bool
	Versions      []Version
	Deployments   []Deployment
}

// Version is one uploaded version of a script.
type Version struct {
	ID               string
	Secret, Previous string
	VPCServices      map[string]string // as Script's
}

// Deployment is a script's deployment: versions and their percentages.
type Deployment struct {
	ID       string             `json:"id"`
	Strategy string             `json:"strategy"`
	Versions []DeploymentTarget `json:"versions"`
}

// DeploymentTarget is one version of a deployment.
type DeploymentTarget struct {
	VersionID  string  `json:"version_id"`
	Percentage float64 `json:"percentage"`
}

// Fake is the fake API and the deployed shim.
type Fake struct {
	opts Options
	API  *httptest.Server
	// Shim is the deployed shim over TLS, reached through ShimClient at
	// whatever host deploy derives; PlainShim is the same over http, for
	// a cloudflare.url on loopback.
	Shim, PlainShim *httptest.Server
	mu              sync.Mutex
	calls           []string
	writes          int
	routes          []Route
	nextID          int
	scripts         map[string]*Script
	served          string // the script the shim servers play (the last uploaded)
	domains         []Domain
	dns             []DNSRecord
}

// DNSRecord is a record of the zone.
type DNSRecord struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	Content string `json:"content"`
	Proxied bool   `json:"proxied"`
}

// AddDNSRecord adds a record to the zone, proxied or not.
func (f *Fake) AddDNSRecord(name string, proxied bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.dns = append(f.dns, DNSRecord{ID: fmt.Sprintf("dns-%d", f.nextID), Name: name, Type: "AAAA", Content: "100::", Proxied: proxied})
}

// Domain is a Workers Custom Domain: attaching one makes the hostname's
// DNS record and certificate (DNSRecord and Certificate say so).
type Domain struct {
	ID          string `json:"id"`
	Hostname    string `json:"hostname"`
	Service     string `json:"service"`
	ZoneID      string `json:"zone_id"`
	Environment string `json:"environment"`
	DNSRecord   bool   `json:"-"`
	Certificate bool   `json:"-"`
}

// AddDomain attaches a Custom Domain as if done before.
func (f *Fake) AddDomain(hostname, service string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.domains = append(f.domains, Domain{ID: fmt.Sprintf("dom-%d", f.nextID), Hostname: hostname, Service: service, ZoneID: f.opts.ZoneID,
		Environment: "production", DNSRecord: true, Certificate: true})
}

// Domains returns the account's Custom Domains.
func (f *Fake) Domains() []Domain {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Domain(nil), f.domains...)
}

// New starts a fake with opts; both servers close when t ends.
func New(t testing.TB, opts Options) *Fake {
	f := &Fake{opts: opts, scripts: map[string]*Script{}}
	f.API = httptest.NewServer(http.HandlerFunc(f.serveAPI))
	f.Shim = httptest.NewTLSServer(http.HandlerFunc(f.serveShim))
	f.PlainShim = httptest.NewServer(http.HandlerFunc(f.serveShim))
	t.Cleanup(f.API.Close)
	t.Cleanup(f.Shim.Close)
	t.Cleanup(f.PlainShim.Close)
	return f
}

// ShimClient is an HTTP client that reaches Shim for every https URL, as
// if DNS sent the shim's workers.dev host or route there.
func (f *Fake) ShimClient() *http.Client {
	tr := f.Shim.Client().Transport.(*http.Transport).Clone()
	addr := f.Shim.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
	return &http.Client{Transport: tr}
}

// BaseURL is the API's base URL, as cloudflare-go takes it.
func (f *Fake) BaseURL() string { return f.API.URL + "/" }

// AddRoute adds a route as if made before, in the dashboard or by a deploy.
func (f *Fake) AddRoute(pattern, script string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addRoute(pattern, script)
}

func (f *Fake) addRoute(pattern, script string) Route {
	f.nextID++
	r := Route{ID: fmt.Sprintf("route-%d", f.nextID), Pattern: pattern, Script: script}
	f.routes = append(f.routes, r)
	return r
}

// SetDevEnabled puts an uploaded-before script on workers.dev (or off).
func (f *Fake) SetDevEnabled(script string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scripts[script] == nil {
		f.scripts[script] = &Script{}
	}
	f.scripts[script].DevEnabled = on
}

// Routes returns the zone's routes.
func (f *Fake) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Route(nil), f.routes...)
}

// Script returns the uploaded script name, or nil.
func (f *Fake) Script(name string) *Script {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scripts[name]
}

// Calls returns "METHOD path" of every API call, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Writes counts the API calls that were not GETs, answered or refused.
func (f *Fake) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// VersionOverrides is the header with which a request asks Cloudflare for
// one version of a Worker in a gradual deployment: script="version-id".
const VersionOverrides = "Cloudflare-Workers-Version-Overrides"

// serveShim plays the deployed shim's /verify (under any path prefix): the
// version a request reaches is the one its Cloudflare-Workers-Version-
// Overrides header names if the current deployment has it, else the one
// with the largest share; it answers with its version id (as the shim does
// from its version_metadata binding) and 204 if the signature matches that
// version's SHIM_SECRET or SHIM_SECRET_PREVIOUS.
func (f *Fake) serveShim(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	v := f.reached(r.Header.Get(VersionOverrides))
	f.mu.Unlock()
	if v == nil || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/verify") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Shim-Version", v.ID)
	body, _ := io.ReadAll(r.Body)
	for _, secret := range []string{v.Secret, v.Previous} {
		want := shim.Signature(secret, r.Method, r.URL.Path, r.Header.Get(shim.HeaderTimestamp), r.Header.Get(shim.HeaderNonce), body)
		if secret != "" && r.Header.Get(shim.HeaderSignature) == want {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	http.Error(w, `{"message":"bad signature"}`, http.StatusUnauthorized)
}

// reached is the version of the served script a request with the override
// header reaches, or nil. f.mu is held.
func (f *Fake) reached(override string) *Version {
	s := f.scripts[f.served]
	if s == nil || len(s.Deployments) == 0 {
		return nil
	}
	d := s.Deployments[len(s.Deployments)-1]
	pick := d.Versions[0]
	for _, t := range d.Versions {
		if t.Percentage > pick.Percentage {
			pick = t
		}
	}
	if _, id, ok := strings.Cut(override, "="); ok {
		for _, t := range d.Versions {
			if strings.Trim(id, `"`) == t.VersionID {
				pick = t
			}
		}
	}
	for i := range s.Versions {
		if s.Versions[i].ID == pick.VersionID {
			return &s.Versions[i]
		}
	}
	return nil
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if r.Method != http.MethodGet {
		f.writes++
	}
	if a := f.check(r); a != nil {
		writeError(w, a)
		return
	}
	result, a := f.route(r)
	if a != nil {
		writeError(w, a)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result})
}

// check answers what comes before any path: the token, its permissions and
// injected failures.
func (f *Fake) check(r *http.Request) *Answer {
	if r.Header.Get("Authorization") != "Bearer "+f.opts.Token {
		return &Answer{Status: 400, Code: 6003, Message: "Invalid request headers"}
	}
	if f.opts.Fail != nil {
		if a := f.opts.Fail(r); a != nil {
			return a
		}
	}
	zone := strings.HasPrefix(r.URL.Path, "/zones/")
	if (zone && f.opts.NoRoutes) || (!zone && f.opts.NoScripts) {
		return &Answer{Status: 403, Code: 10000, Message: "Authentication error"}
	}
	return nil
}

func writeError(w http.ResponseWriter, a *Answer) {
	w.Header().Set("Content-Type", "application/json")
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	w.WriteHeader(a.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"success":  false,
		"errors":   []any{map[string]any{"code": a.Code, "message": a.Message}},
		"messages": []any{},
		"result":   nil,
	})
}

var notFound = &Answer{Status: 404, Code: 7003, Message: "Could not route to the requested path, perhaps your object identifier is invalid?"}

func (f *Fake) route(r *http.Request) (any, *Answer) {
	acct := "/accounts/" + f.opts.AccountID + "/workers/"
	zone := "/zones/" + f.opts.ZoneID + "/workers/routes"
	p := r.URL.Path
	switch {
	case p == acct+"subdomain" && r.Method == http.MethodGet:
		if f.opts.Subdomain == "" {
			return nil, &Answer{Status: 404, Code: 10007, Message: "This subdomain does not exist."}
		}
		return map[string]any{"subdomain": f.opts.Subdomain}, nil
	case strings.HasPrefix(p, acct+"scripts/") && strings.HasSuffix(p, "/subdomain"):
		return f.scriptSubdomain(r, strings.TrimSuffix(strings.TrimPrefix(p, acct+"scripts/"), "/subdomain"))
	case p == acct+"domains":
		return f.customDomains(r)
	case strings.HasPrefix(p, acct+"scripts/") && strings.HasSuffix(p, "/versions") && r.Method == http.MethodPost:
		return f.uploadVersion(r, strings.TrimSuffix(strings.TrimPrefix(p, acct+"scripts/"), "/versions"))
	case strings.HasPrefix(p, acct+"scripts/") && strings.HasSuffix(p, "/deployments"):
		return f.deployments(r, strings.TrimSuffix(strings.TrimPrefix(p, acct+"scripts/"), "/deployments"))
	case strings.HasPrefix(p, acct+"scripts/") && r.Method == http.MethodPut:
		return f.upload(r, strings.TrimPrefix(p, acct+"scripts/"))
	case f.opts.ZoneID != "" && p == "/zones/"+f.opts.ZoneID+"/dns_records" && r.Method == http.MethodGet:
		var out []DNSRecord
		for _, rec := range f.dns {
			if n := r.URL.Query().Get("name.exact"); n == "" || strings.EqualFold(n, rec.Name) {
				out = append(out, rec)
			}
		}
		return append([]DNSRecord{}, out...), nil
	case f.opts.ZoneID != "" && p == zone:
		return f.zoneRoutes(r)
	case f.opts.ZoneID != "" && strings.HasPrefix(p, zone+"/") && r.Method == http.MethodPut:
		return f.updateRoute(r, strings.TrimPrefix(p, zone+"/"))
	case f.opts.ZoneID != "" && strings.HasPrefix(p, zone+"/") && r.Method == http.MethodDelete:
		return f.deleteRoute(strings.TrimPrefix(p, zone+"/"))
	}
	return nil, notFound
}

func (f *Fake) scriptSubdomain(r *http.Request, name string) (any, *Answer) {
	s := f.scripts[name]
	if s == nil {
		return nil, &Answer{Status: 404, Code: 10007, Message: "This Worker does not exist on your account."}
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var body struct {
			Enabled *bool `json:"enabled"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.Enabled == nil {
			return nil, &Answer{Status: 400, Code: 10026, Message: "Could not parse request body"}
		}
		s.DevEnabled = *body.Enabled
	case http.MethodDelete:
		s.DevEnabled = false
	default:
		return nil, notFound
	}
	return map[string]any{"enabled": s.DevEnabled, "previews_enabled": false}, nil
}

func (f *Fake) zoneRoutes(r *http.Request) (any, *Answer) {
	switch r.Method {
	case http.MethodGet:
		return append([]Route{}, f.routes...), nil
	case http.MethodPost:
		var in Route
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Pattern == "" {
			return nil, &Answer{Status: 400, Code: 10026, Message: "Could not parse request body"}
		}
		for _, rt := range f.routes {
			if rt.Pattern == in.Pattern {
				return nil, &Answer{Status: 409, Code: 10020, Message: "A route with the same pattern already exists."}
			}
		}
		return f.addRoute(in.Pattern, in.Script), nil
	}
	return nil, notFound
}

func (f *Fake) updateRoute(r *http.Request, id string) (any, *Answer) {
	var in Route
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		return nil, &Answer{Status: 400, Code: 10026, Message: "Could not parse request body"}
	}
	for i, rt := range f.routes {
		if rt.ID == id {
			f.routes[i].Pattern, f.routes[i].Script = in.Pattern, in.Script
			return f.routes[i], nil
		}
	}
	return nil, &Answer{Status: 404, Code: 10005, Message: "Route not found"}
}

// customDomains lists the Custom Domains (by ?hostname=) or attaches one
// (PUT): a hostname in the account's zone, which gets a DNS record and a
// certificate; attaching a hostname again points it at the service given.
func (f *Fake) customDomains(r *http.Request) (any, *Answer) {
	switch r.Method {
	case http.MethodGet:
		out := []Domain{}
		for _, d := range f.domains {
			if h := r.URL.Query().Get("hostname"); h == "" || h == d.Hostname {
				out = append(out, d)
			}
		}
		return out, nil
	case http.MethodPut:
		var in Domain
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Hostname == "" || in.Service == "" || in.Environment == "" {
			return nil, &Answer{Status: 400, Code: 10026, Message: "Could not parse request body"}
		}
		if in.ZoneID != f.opts.ZoneID {
			return nil, &Answer{Status: 400, Code: 100117, Message: "the hostname is not in a zone of this account"}
		}
		if f.scripts[in.Service] == nil {
			return nil, &Answer{Status: 404, Code: 10007, Message: "This Worker does not exist on your account."}
		}
		for i, d := range f.domains {
			if d.Hostname == in.Hostname {
				f.domains[i].Service = in.Service
				return f.domains[i], nil
			}
		}
		f.nextID++
		in.ID, in.DNSRecord, in.Certificate = fmt.Sprintf("dom-%d", f.nextID), true, true
		f.domains = append(f.domains, in)
		return in, nil
	}
	return nil, notFound
}

func (f *Fake) deleteRoute(id string) (any, *Answer) {
	for i, rt := range f.routes {
		if rt.ID == id {
			f.routes = append(f.routes[:i], f.routes[i+1:]...)
			return map[string]any{"id": id}, nil
		}
	}
	return nil, &Answer{Status: 404, Code: 10005, Message: "Route not found"}
}

// upload takes a multipart module upload (the script upload: a new version
// deployed to 100%) and answers as the account's plan and subdomain say.
func (f *Fake) upload(r *http.Request, name string) (any, *Answer) {
	if f.opts.Subdomain == "" {
		return nil, &Answer{Status: 400, Code: 10063, Message: "You need a workers.dev subdomain in order to proceed"}
	}
	s, a := f.readScript(r)
	if a != nil {
		return nil, a
	}
	if old := f.scripts[name]; old != nil {
		s.DevEnabled, s.Versions, s.Deployments = old.DevEnabled, old.Versions, old.Deployments
	}
	obs, _ := s.Metadata["observability"].(map[string]any)
	s.Observability = obs["enabled"] == true
	v := f.addVersion(s)
	f.nextID++
	s.Deployments = append(s.Deployments, Deployment{ID: fmt.Sprintf("dep-%d", f.nextID), Strategy: "percentage",
		Versions: []DeploymentTarget{{VersionID: v.ID, Percentage: 100}}})
	f.scripts[name], f.served = s, name
	return map[string]any{"id": name, "etag": "e1"}, nil
}

// uploadVersion takes a version upload: the script must exist; nothing is
// deployed, and the script's settings stay.
func (f *Fake) uploadVersion(r *http.Request, name string) (any, *Answer) {
	old := f.scripts[name]
	if old == nil || len(old.Versions) == 0 {
		return nil, &Answer{Status: 404, Code: 10007, Message: "This Worker does not exist on your account."}
	}
	s, a := f.readScript(r)
	if a != nil {
		return nil, a
	}
	s.DevEnabled, s.Versions, s.Deployments, s.Observability = old.DevEnabled, old.Versions, old.Deployments, old.Observability
	v := f.addVersion(s)
	f.scripts[name], f.served = s, name
	return map[string]any{"id": v.ID, "number": len(s.Versions), "resources": map[string]any{}}, nil
}

func (f *Fake) addVersion(s *Script) Version {
	f.nextID++
	v := Version{ID: fmt.Sprintf("ver-%d", f.nextID), Secret: s.Secret, Previous: s.Previous, VPCServices: s.VPCServices}
	s.Versions = append(s.Versions, v)
	return v
}

// deployments lists a script's deployments (latest first) or makes one:
// known versions whose percentages add up to 100.
func (f *Fake) deployments(r *http.Request, name string) (any, *Answer) {
	s := f.scripts[name]
	if s == nil || len(s.Versions) == 0 {
		return nil, &Answer{Status: 404, Code: 10007, Message: "This Worker does not exist on your account."}
	}
	if r.Method == http.MethodGet {
		out := make([]Deployment, 0, len(s.Deployments))
		for i := len(s.Deployments) - 1; i >= 0; i-- {
			out = append(out, s.Deployments[i])
		}
		return map[string]any{"deployments": out}, nil
	}
	if r.Method != http.MethodPost {
		return nil, notFound
	}
	var d Deployment
	if json.NewDecoder(r.Body).Decode(&d) != nil || d.Strategy != "percentage" || len(d.Versions) == 0 {
		return nil, &Answer{Status: 400, Code: 10026, Message: "Could not parse request body"}
	}
	total := 0.0
	for _, t := range d.Versions {
		total += t.Percentage
		if !slices.ContainsFunc(s.Versions, func(v Version) bool { return v.ID == t.VersionID }) {
			return nil, &Answer{Status: 400, Code: 10200, Message: "version " + t.VersionID + " does not exist"}
		}
	}
	if total != 100 {
		return nil, &Answer{Status: 400, Code: 10201, Message: "the percentages must add up to 100"}
	}
	f.nextID++
	d.ID = fmt.Sprintf("dep-%d", f.nextID)
	s.Deployments = append(s.Deployments, d)
	return d, nil
}

// readScript reads an upload's parts and its bindings' secrets, refusing
// a worker_loader binding as the account's plan says.
func (f *Fake) readScript(r *http.Request) (*Script, *Answer) {
	s, err := readUpload(r)
	if err != nil {
		return nil, &Answer{Status: 400, Code: 10021, Message: err.Error()}
	}
	bindings, _ := s.Metadata["bindings"].([]any)
	for _, b := range bindings {
		b, _ := b.(map[string]any)
		switch {
		case b["type"] == "worker_loader" && f.opts.Loader == LoaderNeedsPlan:
			return nil, &Answer{Status: 400, Code: 10195, Message: "In order to use Dynamic Workers, you must switch to a paid plan."}
		case b["type"] == "worker_loader" && f.opts.Loader == LoaderLegacy:
			return nil, &Answer{Status: 400, Code: 10021, Message: fmt.Sprintf("binding %s of type worker_loader is invalid", b["name"])}
		case b["type"] == "secret_text" && b["name"] == "SHIM_SECRET":
			s.Secret, _ = b["text"].(string)
		case b["type"] == "secret_text" && b["name"] == "SHIM_SECRET_PREVIOUS":
			s.Previous, _ = b["text"].(string)
		case b["type"] == "vpc_service":
			// Cloudflare refuses a binding without the service's id (as it
			// refuses one naming a service the account does not have).
			name, _ := b["name"].(string)
			id, _ := b["service_id"].(string)
			if name == "" || id == "" || len(b) != 3 {
				return nil, &Answer{Status: 400, Code: 10021, Message: fmt.Sprintf("binding %v of type vpc_service is invalid: it needs a name and a service_id", b["name"])}
			}
			if s.VPCServices == nil {
				s.VPCServices = map[string]string{}
			}
			s.VPCServices[name] = id
		}
	}
	return s, nil
}

func readUpload(r *http.Request) (*Script, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, fmt.Errorf("expected multipart/form-data, got %q", r.Header.Get("Content-Type"))
	}
	s := &Script{Parts: map[string]Part{}}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		data, _ := io.ReadAll(p)
		// The raw filename: Part.FileName would drop "guest/".
		_, disp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		s.Parts[p.FormName()] = Part{Filename: disp["filename"], ContentType: p.Header.Get("Content-Type"), Data: data}
	}
	if err := json.Unmarshal(s.Parts["metadata"].Data, &s.Metadata); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return s, nil
}

// SetObservability turns an uploaded script's observability setting on or
// off, as an operator would in the dashboard.
func (f *Fake) SetObservability(script string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.scripts[script]; s != nil {
		s.Observability = on
	}
}
