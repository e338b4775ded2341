package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

// flaky is a server in front of the real gateway that answers the first
// `failures` calls itself with fail, and proxies the rest.
type flaky struct {
	url   string
	calls atomic.Int32
}

func newFlaky(t *testing.T, failures int32, fail http.HandlerFunc) *flaky {
	t.Helper()
	target, err := url.Parse(gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &flaky{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.calls.Add(1) <= failures {
			_, _ = io.Copy(io.Discard, r.Body)
			fail(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// answer returns a handler writing status, a Retry-After header (if not
// empty) and a body of contentType.
func answer(status int, retryAfter, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const (
	problem503 = `{"type":"https://dynamic-workers.dev/problems#runtime_unavailable","title":"Service Unavailable","status":503,"detail":"no runtime can take the execution now; retry later","code":"runtime_unavailable"}`
	problem429 = `{"type":"https://dynamic-workers.dev/problems#rate_limited","title":"Too Many Requests","status":429,"detail":"over quota","code":"rate_limited"}`
	crashed    = `{"id":"ex_1","success":false,"stdout":"","stderr":"","logs":[],"error":{"code":"runtime_crashed","message":"the runtime died"},"truncated":false,"outbound":[],"warm":false,"durationMs":1}`
	// crashedAfterCall made a call first: running it again would repeat it.
	crashedAfterCall = `{"id":"ex_1","success":false,"stdout":"","stderr":"","logs":[],"error":{"code":"runtime_crashed","message":"the runtime died"},"truncated":false,"outbound":[{"method":"POST","url":"/api/orders","capability":"orders"}],"warm":false,"durationMs":1}`
)

var (
	unavailable = answer(http.StatusServiceUnavailable, "0", "application/problem+json", problem503)
	rateLimited = answer(http.StatusTooManyRequests, "0", "application/problem+json", problem429)
	crash       = answer(http.StatusOK, "", "application/json", crashed)
	crashCalled = answer(http.StatusOK, "", "application/json", crashedAfterCall)
	hello       = &execution.Request{Code: `export default { fetch() { console.log("hi"); return new Response("hello"); } }`}
)

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failures  int32
		fail      http.HandlerFunc
		retries   int
		wantCalls int32
		wantErr   string         // problem code of the error; "" for none
		wantCode  execution.Code // error code of the result; "" for success
	}{
		{"503 not retried by default", 1, unavailable, 0, 1, client.CodeRuntimeUnavailable, ""},
		{"503 retried", 1, unavailable, 2, 2, "", ""},
		{"503 retries exhausted", 3, unavailable, 2, 3, client.CodeRuntimeUnavailable, ""},
		{"runtime_crashed not retried by default", 1, crash, 0, 1, "", execution.CodeRuntimeCrashed},
		{"runtime_crashed retried", 1, crash, 1, 2, "", ""},
		{"runtime_crashed after a call never retried", 1, crashCalled, 3, 1, "", execution.CodeRuntimeCrashed},
		{"429 never retried", 1, rateLimited, 3, 1, client.CodeRateLimited, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFlaky(t, tt.failures, tt.fail)
			res, err := client.New(f.url, client.WithRetries(tt.retries)).Execute(t.Context(), hello)
			if calls := f.calls.Load(); calls != tt.wantCalls {
				t.Errorf("server saw %d calls, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr != "" {
				var gwErr *client.Error
				if !errors.As(err, &gwErr) || gwErr.Code != tt.wantErr {
					t.Fatalf("Execute() error = %v, want %s", err, tt.wantErr)
				}
				if gwErr.RetryAfter != 0 {
					t.Errorf("RetryAfter = %v, want 0 (Retry-After: 0)", gwErr.RetryAfter)
				}
				return
			}
			if err != nil {
				t.Fatalf("Execute() error = %v, want a result", err)
			}
			switch {
			case tt.wantCode == "" && (!res.Success || res.Response.Body != "hello"):
				t.Errorf("Execute() = %+v, want success", res)
			case tt.wantCode != "" && (res.Error == nil || res.Error.Code != tt.wantCode):
				t.Errorf("Execute() error = %+v, want %s", res.Error, tt.wantCode)
			}
		})
	}
}

func TestStreamRetriesOpening(t *testing.T) {
	t.Parallel()
	f := newFlaky(t, 1, unavailable)
	s, err := client.New(f.url, client.WithRetries(1)).Stream(t.Context(), hello)
	if err != nil {
		t.Fatalf("Stream() error = %v, want a stream after one retry", err)
	}
	defer s.Close()
	var types []string
	for s.Next() {
		types = append(types, s.Event().Type)
	}
	if s.Err() != nil || strings.Join(types, ",") != "start,log,result" || !s.Result().Success {
		t.Errorf("stream = %v, err %v, want start,log,result and success", types, s.Err())
	}
	if calls := f.calls.Load(); calls != 2 {
		t.Errorf("server saw %d calls, want 2", calls)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFlaky(t, 1, answer(http.StatusServiceUnavailable, "1", "application/problem+json", problem503))
	start := time.Now()
	res, err := client.New(f.url, client.WithRetries(1)).Execute(t.Context(), hello)
	if err != nil || !res.Success {
		t.Fatalf("Execute() = %+v, %v; want success after a retry", res, err)
	}
	// A lower bound: a loaded machine only makes the wait longer.
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("Execute() returned after %v, want at least the 1s Retry-After asked for", elapsed)
	}
}

func TestRetryNotPastDeadline(t *testing.T) {
	t.Parallel()
	f := newFlaky(t, 1, answer(http.StatusServiceUnavailable, "3600", "application/problem+json", problem503))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := client.New(f.url, client.WithRetries(1)).Execute(ctx, hello)
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.RetryAfter != time.Hour {
		t.Fatalf("Execute() error = %v, want the 503 with RetryAfter 1h", err)
	}
	// The wait outlasts the deadline: Execute answers at once, its context
	// still live, rather than waiting it out.
	if ctx.Err() != nil {
		t.Errorf("Execute() returned once its context had ended (%v), want it to answer at once", ctx.Err())
	}
	if calls := f.calls.Load(); calls != 1 {
		t.Errorf("server saw %d calls, want 1", calls)
	}
}

func TestNonProblemError(t *testing.T) {
	t.Parallel()
	f := newFlaky(t, 1, answer(http.StatusBadGateway, "", "text/html", "<h1>bad gateway</h1>\n"))
	_, err := client.New(f.url).Execute(t.Context(), hello)
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.StatusCode != http.StatusBadGateway || gwErr.Code != "" || gwErr.Detail != "<h1>bad gateway</h1>" {
		t.Fatalf("Execute() error = %#v, want a 502 with no code and the body as detail", err)
	}
}

func TestStreamFaults(t *testing.T) {
	t.Parallel()
	const (
		start  = `{"type":"start","id":"ex_1"}` + "\n"
		log    = `{"type":"log","level":"log","stream":"stdout","message":"hi","time":"2026-11-26T12:00:00Z"}` + "\n"
		result = `{"type":"result","id":"ex_1","success":true,"stdout":"hi","stderr":"","truncated":false,"outbound":[],"warm":false,"durationMs":1}` + "\n"
	)
	tests := []struct {
		name      string
		body      string
		wantTypes string
		wantErr   error // nil: no error; else errors.Is target
		wantAny   bool  // any error will do
	}{
		{"complete", start + log + result, "start,log,result", nil, false},
		{"restart surfaced", start + log + `{"type":"restart","reason":"runtime_crashed"}` + "\n" + log + result, "start,log,restart,log,result", nil, false},
		{"unknown event skipped", start + `{"type":"progress","pct":50}` + "\n\n" + result, "start,result", nil, false},
		{"cut before result", start + log, "start,log", client.ErrIncompleteStream, false},
		{"cut mid-line", start + `{"type":"log","lev`, "start", client.ErrIncompleteStream, false},
		{"not json", start + "<html>\n", "start", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(answer(http.StatusOK, "", "application/x-ndjson", tt.body))
			t.Cleanup(srv.Close)
			s, err := client.New(srv.URL).Stream(t.Context(), hello)
			if err != nil {
				t.Fatalf("Stream() error = %v", err)
			}
			defer s.Close()
			var types []string
			for s.Next() {
				types = append(types, s.Event().Type)
				if ev := s.Event(); ev.Type == execution.EventRestart && ev.Reason != string(execution.CodeRuntimeCrashed) {
					t.Errorf("restart reason = %q, want runtime_crashed", ev.Reason)
				}
			}
			if got := strings.Join(types, ","); got != tt.wantTypes {
				t.Errorf("events = %s, want %s", got, tt.wantTypes)
			}
			switch err := s.Err(); {
			case tt.wantAny:
				if err == nil {
					t.Error("Err() = nil, want an error")
				}
			case tt.wantErr == nil && err != nil, tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Err() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestStreamWrongMediaType(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(answer(http.StatusOK, "", "application/json", crashed))
	t.Cleanup(srv.Close)
	if _, err := client.New(srv.URL).Stream(t.Context(), hello); err == nil || !strings.Contains(err.Error(), "application/x-ndjson") {
		t.Errorf("Stream() error = %v, want one naming the media type it wanted", err)
	}
}
