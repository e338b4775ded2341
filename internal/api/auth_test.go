package api_test

import (
	"encoding/json"
	"github.com/dynamic-workers/gateway/internal/executions"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

type authFixture struct {
	url                      string
	logs                     *loadertest.Buffer
	backend                  *holdingBackend
	served                   *served // requests the handler has finished
	valid, limited, one, old string  // keys
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	f := &authFixture{logs: &loadertest.Buffer{}, served: newServed()}
	var keys []auth.Key
	add := func(name string, k auth.Key) string {
		key, entry := apitest.NewKey(t, name)
		k.Name, k.Hash = entry.Name, entry.Hash
		keys = append(keys, k)
		return key
	}
	f.valid = add("ci", auth.Key{})
	f.limited = add("batch", auth.Key{Requests: 2})
	f.one = add("single", auth.Key{Concurrency: 1})
	f.old = add("retired", auth.Key{Revoked: true})
	log := zerolog.New(f.logs)
	backend := loadertest.StartLocal(t, log, loadertest.Processes(1))
	f.backend = &holdingBackend{Backend: backend}
	srv := httptest.NewServer(f.served.wrap(apitest.Serve(t, log, f.backend, apitest.Gateway{
		Options: api.Options{MaxRequestBytes: testMaxBody, OpenAPI: []byte("openapi: 3.1.0\n"), Keys: auth.NewKeyring(keys)},
		Limits:  testLimits, Now: func() time.Time { return testNow },
		Quota: executions.Quota{Requests: 100, Window: time.Minute, Concurrency: 4},
	})))
	t.Cleanup(func() {
		srv.Close()
		backend.Close()
	})
	f.url = srv.URL
	return f
}

func (f *authFixture) call(t *testing.T, authorization, code string) (*http.Response, api.Problem) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/execute", strings.NewReader(`{"code": `+code+`, "secrets": {"S": "very-secret-value"}}`))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p api.Problem
	if resp.StatusCode != 200 {
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatalf("%d %s: not a problem", resp.StatusCode, data)
		}
	}
	return resp, p
}

const okCodeJSON = `"export default { fetch(r, env) { console.log(env.S); return new Response('ok'); } }"`

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	tests := []struct {
		name, header string
		status       int
	}{
		{"valid", "Bearer " + f.valid, 200},
		{"lower-case scheme", "bearer " + f.valid, 200},
		{"missing", "", 401},
		{"basic scheme", "Basic " + f.valid, 401},
		{"no token", "Bearer", 401},
		{"blank token", "Bearer    ", 401},
		{"wrong key", "Bearer dwk_notakeyatall", 401},
		{"key with extra", "Bearer " + f.valid + "x", 401},
		{"revoked", "Bearer " + f.old, 401},
		{"the hash instead", "Bearer " + auth.HashKey(f.valid), 401},
	}
	for _, tt := range tests {
		resp, p := f.call(t, tt.header, okCodeJSON)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if tt.status == 401 && (p.Code != "unauthorized" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer")) {
			t.Errorf("%s: problem %+v, WWW-Authenticate %q", tt.name, p, resp.Header.Get("WWW-Authenticate"))
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s without a key = %d, want 200", path, resp.StatusCode)
		}
	}
	logs := f.logs.String()
	for _, leak := range []string{f.valid, f.old, "very-secret-value", "dwk_notakeyatall"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log contains %q", leak)
		}
	}
	for _, want := range []string{`"key":"ci"`, `"key":"retired"`, `"message":"authentication failed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	for i := range 2 {
		if resp, _ := f.call(t, "Bearer "+f.limited, okCodeJSON); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d, want 200", i, resp.StatusCode)
		}
	}
	resp, p := f.call(t, "Bearer "+f.limited, okCodeJSON)
	if resp.StatusCode != 429 || p.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Limit") != "2" {
		t.Errorf("third call: %d %+v Retry-After %q X-RateLimit-Limit %q; want 429 rate_limited with headers",
			resp.StatusCode, p, resp.Header.Get("Retry-After"), resp.Header.Get("X-RateLimit-Limit"))
	}
	// Another key has its own allowance.
	if resp, _ := f.call(t, "Bearer "+f.valid, okCodeJSON); resp.StatusCode != 200 {
		t.Errorf("other key: %d, want 200", resp.StatusCode)
	}
	if !regexp.MustCompile(`"key":"batch",[^\n]*"message":"rate limited"`).MatchString(f.logs.String()) {
		t.Errorf("the 429 is not logged with the key's name:\n%s", f.logs.String())
	}
}

// TestConcurrencyLimit: a key with a concurrency of one is refused a second
// execution while its first runs, and admitted again once the first ended.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	reached, release := f.backend.holdNext(t)
	first := make(chan int, 1)
	go func() {
		resp, _ := f.call(t, "Bearer "+f.one, okCodeJSON)
		first <- resp.StatusCode
	}()
	<-reached // the first runs, held by the backend
	resp, p := f.call(t, "Bearer "+f.one, okCodeJSON)
	if resp.StatusCode != 429 || p.Code != "concurrency_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second while the first runs: %d %+v Retry-After %q; want 429 concurrency_limited", resp.StatusCode, p, resp.Header.Get("Retry-After"))
	}
	release()
	if status := <-first; status != 200 {
		t.Errorf("first: %d, want 200", status)
	}
	f.served.wait(t, 2) // the refusal and the first have left the middleware
	if resp, _ := f.call(t, "Bearer "+f.one, okCodeJSON); resp.StatusCode != 200 {
		t.Errorf("after the first ended: %d, want 200", resp.StatusCode)
	}
}
