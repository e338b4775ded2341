package playground_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/playground"
)

// newServer serves the real gateway handler; the backend is never reached
// by these tests (they fetch only the page).
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), nil, apitest.Options()))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestPageHeaders(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	tests := []struct {
		path, contentType string
	}{
		{"/playground", "text/html; charset=utf-8"},
		{"/playground/app.js", "text/javascript; charset=utf-8"},
		{"/playground/app.css", "text/css; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv.URL+tt.path, nil)
			if resp.StatusCode != http.StatusOK || len(body) == 0 {
				t.Fatalf("GET %s = %d (%d bytes), want 200 with a body", tt.path, resp.StatusCode, len(body))
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("GET %s Content-Type = %q, want %q", tt.path, got, tt.contentType)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s X-Content-Type-Options = %q, want nosniff", tt.path, got)
			}
		})
	}
}

// TestPageCSP checks the policy allows no inline or foreign script, and that
// the page needs none: every script is external and no element has an
// event-handler attribute.
func TestPageCSP(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	resp, body := get(t, srv.URL+"/playground", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src": "'none'", "script-src": "'self'", "connect-src": "'self'",
		"base-uri": "'none'", "form-action": "'none'", "frame-ancestors": "'none'",
	}
	for name, value := range want {
		if directives[name] != value {
			t.Errorf("CSP %s = %q, want %q (policy %q)", name, directives[name], value, csp)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP %q allows something unsafe", csp)
	}
	m := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(directives["style-src"])
	if m == nil || !strings.Contains(body, `data-style-nonce="`+m[1]+`"`) {
		t.Errorf("style-src %q: the page does not carry its nonce", directives["style-src"])
	}
	if _, again := get(t, srv.URL+"/playground", nil); m != nil && strings.Contains(again, m[1]) {
		t.Errorf("two requests got the same nonce %q", m[1])
	}
	for _, tag := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/playground/`) {
			t.Errorf("inline or foreign script %q", tag)
		}
	}
	if regexp.MustCompile(`(?is)<script\b[^>]*>[^<]+</script>`).MatchString(body) {
		t.Error("a script element has inline content")
	}
	if h := regexp.MustCompile(`(?i)\son[a-z]+\s*=`).FindString(body); h != "" {
		t.Errorf("event-handler attribute %q in the page", h)
	}
}

func TestRootLinksToPlayground(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	resp, body := get(t, srv.URL+"/", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != playground.Path {
		t.Errorf("GET / = %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), playground.Path)
	}
	if !strings.Contains(body, `href="/playground"`) {
		t.Errorf("GET / body %q has no link to the playground", body)
	}
}

// TestOtherRequestsAreProblems: the page's routes answer other methods and
// paths as the rest of the API does.
func TestOtherRequestsAreProblems(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/playground", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/playground/app.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/playground/index.html", http.StatusNotFound},
		{http.MethodGet, "/playground/../go.mod", http.StatusNotFound},
		{http.MethodGet, "/playground/assets/app.js", http.StatusNotFound},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p execution.Problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != tt.status || err != nil || p.Status != tt.status {
			t.Errorf("%s %s = %d (problem %+v, %v), want a %d problem", tt.method, tt.path, resp.StatusCode, p, err, tt.status)
		}
	}
}

func TestAssetRevalidation(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	resp, _ := get(t, srv.URL+"/playground/app.js", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("app.js has no ETag")
	}
	again, body := get(t, srv.URL+"/playground/app.js", http.Header{"If-None-Match": {etag}})
	if again.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET app.js If-None-Match %s = %d, want 304", etag, again.StatusCode)
	}
}

// TestBundleIsCurrent fails when src/ or the npm pins changed and
// assets/app.js was not rebuilt (`make playground`).
func TestBundleIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := playground.SourceHash(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	if got := playground.BundleSourceHash(); got != want {
		t.Errorf("assets/app.js was built from sources %q, the sources now hash to %q: run `make playground`", got, want)
	}
}

// TestContract checks the page's routes answer as openapi.yaml says.
func TestContract(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	for _, ct := range []string{"text/html", "text/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	srv := newServer(t)
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/playground", "/playground/app.js", "/playground/app.css"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("GET %s: not in openapi.yaml: %v", path, err)
			continue
		}
		resp, body := get(t, srv.URL+path, nil)
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
		err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(strings.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true},
		})
		if err != nil {
			t.Errorf("GET %s: response does not match openapi.yaml: %v", path, err)
		}
	}
}
