package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// The tests share one real workerd runtime behind one gateway.
var shared struct {
	once    sync.Once
	backend *local.Pool
	srv     *httptest.Server
	logs    *loadertest.Buffer
}

func TestMain(m *testing.M) {
	transpile.MaybeServeChild()
	code := m.Run()
	storetest.StopShared()
	if shared.srv != nil {
		shared.srv.Close()
		shared.backend.Close()
	}
	os.Exit(code)
}

var testLimits = apitest.Options().Limits

// testNow is the clock the tests validate compatibility dates against.
var testNow = apitest.Now

const testMaxBody = 1 << 20

func gatewayURL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.logs = &loadertest.Buffer{}
		log := zerolog.New(shared.logs)
		shared.backend = loadertest.StartLocal(t, log)
		g := apitest.Gateway{
			Options: api.Options{MaxRequestBytes: testMaxBody, OpenAPI: gateway.OpenAPI, Heartbeat: 200 * time.Millisecond},
			Limits:  testLimits,
			Now:     func() time.Time { return testNow },
		}
		// Shared by every test: started here, stopped by TestMain.
		svc := apitest.Service(log, shared.backend, g)
		svc.Start()
		shared.srv = httptest.NewServer(api.NewHandler(log, svc, apitest.Front(g)))
	})
	if shared.srv == nil {
		t.Fatal("gateway failed to start in an earlier test")
	}
	return shared.srv.URL
}

// execute posts body to /execute and decodes a 200 result.
func execute(t *testing.T, body any) *execution.Result {
	t.Helper()
	resp, data := post(t, "/execute", "application/json", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /execute = %d %s, want 200", resp.StatusCode, data)
	}
	var res execution.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("decode result: %v: %s", err, data)
	}
	if resp.Header.Get("X-Execution-Id") != res.ID || res.ID == "" {
		t.Errorf("X-Execution-Id = %q, result id = %q, want equal and set", resp.Header.Get("X-Execution-Id"), res.ID)
	}
	return &res
}

func post(t *testing.T, path, contentType string, body any) (*http.Response, []byte) {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gatewayURL(t)+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

// do sends req and returns the response with its whole body read.
func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// wantUnavailable checks that resp, with body data, is a 503
// runtime_unavailable problem with a Retry-After.
func wantUnavailable(t *testing.T, what string, resp *http.Response, data []byte) {
	t.Helper()
	var p api.Problem
	_ = json.Unmarshal(data, &p)
	if resp.StatusCode != 503 || p.Code != "runtime_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s = %d %q Retry-After %q, want 503 runtime_unavailable with Retry-After", what, resp.StatusCode, p.Code, resp.Header.Get("Retry-After"))
	}
}

func wantSuccess(t *testing.T, res *execution.Result) {
	t.Helper()
	if !res.Success || res.Error != nil {
		t.Fatalf("success = %v, error = %+v, want success", res.Success, res.Error)
	}
}

func wantError(t *testing.T, res *execution.Result, code execution.Code, contains string) {
	t.Helper()
	if res.Success || res.Error == nil {
		t.Fatalf("success = %v, error = nil, want error %s", res.Success, code)
	}
	if res.Error.Code != code || !strings.Contains(res.Error.Message, contains) {
		t.Fatalf("error = %+v, want code %s with message containing %q", res.Error, code, contains)
	}
	if res.Response != nil {
		t.Errorf("response = %+v, want none on failure", res.Response)
	}
}

func TestSeedExample(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `
  export default {
    async fetch(request, env, ctx) {
      console.log("Isolated worker running!");
      return new Response("Done");
    }
  }`})
	wantSuccess(t, res)
	if res.Stdout != "Isolated worker running!" || res.Stderr != "" {
		t.Errorf("stdout, stderr = %q, %q, want %q, empty", res.Stdout, res.Stderr, "Isolated worker running!")
	}
	if res.Response == nil || res.Response.Body != "Done" || res.Response.Status != 200 || res.Response.BodyEncoding != "utf8" {
		t.Errorf("response = %+v, want 200 utf8 Done", res.Response)
	}
	if len(res.Logs) != 1 || res.Logs[0].Level != "log" || res.Logs[0].Stream != "stdout" || res.Logs[0].Time.IsZero() {
		t.Errorf("logs = %+v, want one stdout log with a time", res.Logs)
	}
	if res.DurationMs <= 0 || res.Warm || res.Truncated || res.Outbound == nil {
		t.Errorf("durationMs, warm, truncated, outbound = %v, %v, %v, %v", res.DurationMs, res.Warm, res.Truncated, res.Outbound)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	base := gatewayURL(t)
	tests := []struct {
		method, path string
		status       int
		contentType  string
		code         string
	}{
		{"GET", "/healthz", 200, "application/json", ""},
		{"GET", "/readyz", 200, "application/json", ""},
		{"GET", "/openapi.yaml", 200, "application/yaml", ""},
		{"GET", "/nope", 404, "application/problem+json", "not_found"},
		{"GET", "/execute", 405, "application/problem+json", "method_not_allowed"},
		{"DELETE", "/healthz", 405, "application/problem+json", "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("%s %s = %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.contentType)
			}
			// Every request has an id; an execution id only a request that
			// started one.
			if id := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
				t.Errorf("X-Request-Id = %q, want req_…", id)
			}
			if id := resp.Header.Get("X-Execution-Id"); id != "" {
				t.Errorf("X-Execution-Id = %q on %s %s, which runs nothing", id, tt.method, tt.path)
			}
			if tt.code != "" {
				var p api.Problem
				if err := json.Unmarshal(data, &p); err != nil || p.Code != tt.code || p.Status != tt.status {
					t.Errorf("problem = %s, want code %s", data, tt.code)
				}
			}
			if tt.path == "/openapi.yaml" && !bytes.Equal(data, gateway.OpenAPI) {
				t.Errorf("/openapi.yaml differs from openapi.yaml")
			}
		})
	}
}

// TestReadyzUnavailable checks /readyz against a backend that is not ready.
func TestReadyzUnavailable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), notReady{}, apitest.Gateway{Options: api.Options{MaxRequestBytes: 1 << 10}, Limits: testLimits}))
	defer srv.Close()
	for _, path := range []string{"/readyz", "/execute"} {
		method := http.MethodGet
		var body io.Reader
		if path == "/execute" {
			method = http.MethodPost
			body = strings.NewReader(`{"code": "export default {}"}`)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
		req.Header.Set("Content-Type", "application/json")
		resp, data := do(t, req)
		wantUnavailable(t, method+" "+path, resp, data)
	}
}

type notReady struct{}

func (notReady) Execute(context.Context, *execution.Job, func(execution.Event) error) error {
	return execution.ErrUnavailable
}

func (notReady) Drain()                      {}
func (notReady) Close() error                { return nil }
func (notReady) Ready(context.Context) error { return execution.ErrUnavailable }
