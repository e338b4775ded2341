package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
)

func TestExecute(t *testing.T) {
	t.Parallel()
	c := client.New(gatewayURL + "/") // a trailing slash is fine
	tests := []struct {
		name       string
		req        execution.Request
		wantCode   execution.Code // "" for success
		wantStdout string
		wantStderr string
		wantBody   string
	}{
		{
			name: "success",
			req: execution.Request{Code: `export default { fetch(request, env) {
				console.log("hello", env.WHO); console.error("careful");
				return new Response("Done " + env.N * 2);
			} }`, Env: map[string]any{"WHO": "world", "N": 21}},
			wantStdout: "hello world", wantStderr: "careful", wantBody: "Done 42",
		},
		{
			name: "secret masked",
			req: execution.Request{Code: `export default { fetch(request, env) {
				console.log("token is", env.TOKEN); return new Response(env.TOKEN);
			} }`, Secrets: map[string]string{"TOKEN": "s3cr3t-value"}},
			wantStdout: "token is [REDACTED]", wantBody: "[REDACTED]",
		},
		{
			name: "guest exception",
			req: execution.Request{Code: `export default { fetch() {
				console.log("before"); throw new Error("boom");
			} }`},
			wantCode: execution.CodeException, wantStdout: "before",
		},
		{
			name:     "syntax error",
			req:      execution.Request{Code: `export default { fetch() { return new Response( } }`},
			wantCode: execution.CodeSyntaxError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := c.Execute(t.Context(), &tt.req)
			if err != nil {
				t.Fatalf("Execute() error = %v, want a result", err)
			}
			if res.ID == "" || res.Stdout != tt.wantStdout || res.Stderr != tt.wantStderr {
				t.Errorf("Execute() = id %q, stdout %q, stderr %q; want an id, %q, %q", res.ID, res.Stdout, res.Stderr, tt.wantStdout, tt.wantStderr)
			}
			if tt.wantCode == "" {
				if !res.Success || res.Response == nil || res.Response.Body != tt.wantBody {
					t.Errorf("Execute() = success %v, response %+v, error %+v; want success with body %q", res.Success, res.Response, res.Error, tt.wantBody)
				}
				return
			}
			if res.Success || res.Error == nil || res.Error.Code != tt.wantCode {
				t.Errorf("Execute() = success %v, error %+v; want error %s", res.Success, res.Error, tt.wantCode)
			}
		})
	}
}

// TestStreamDeliversEventsLive reads a stream to its end: each event as
// the gateway sent it, then nothing. That an event arrives while the guest
// still runs is TestCancelStream's: there the first log, read while the
// guest waits a minute, ends the stream.
func TestStreamDeliversEventsLive(t *testing.T) {
	t.Parallel()
	s, err := client.New(gatewayURL).Stream(t.Context(), &execution.Request{Code: `export default { async fetch() {
		console.log("step 1");
		await new Promise(r => setTimeout(r, 300));
		console.error("step 2");
		return new Response("ok");
	} }`})
	if err != nil {
		t.Fatalf("Stream() error = %v", err)
	}
	defer s.Close()
	var got []execution.Event
	for s.Next() {
		got = append(got, s.Event())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
	if s.Next() {
		t.Error("Next() after the result = true, want false")
	}
	var types []string
	for _, ev := range got {
		types = append(types, ev.Type)
	}
	if want := []string{"start", "log", "log", "result"}; !slices.Equal(types, want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	start, first, second, result := got[0], got[1].Log, got[2].Log, got[3].Result
	if start.ID == "" || start.ID != s.ID() || result.ID != s.ID() {
		t.Errorf("start id %q, result id %q, ID() %q; want all equal and set", start.ID, result.ID, s.ID())
	}
	if first.Message != "step 1" || first.Stream != execution.StreamStdout || second.Message != "step 2" || second.Stream != execution.StreamStderr {
		t.Errorf("logs = %+v, %+v; want step 1 on stdout, step 2 on stderr", first, second)
	}
	if !result.Success || result.Response.Body != "ok" || result.Stdout != "step 1" || result.Stderr != "step 2" {
		t.Errorf("result = %+v, want success with body ok and both streams", result)
	}
	if s.Result() != result {
		t.Errorf("Result() = %p, want the result event's %p", s.Result(), result)
	}
}

func TestStreamEvents(t *testing.T) {
	t.Parallel()
	c := client.New(gatewayURL)
	s, err := c.Stream(t.Context(), &execution.Request{Code: `export default { fetch() { throw new Error("boom"); } }`})
	if err != nil {
		t.Fatalf("Stream() error = %v", err)
	}
	var results []*execution.Result
	n := 0
	for ev, err := range s.Events() {
		if err != nil {
			t.Fatalf("Events() error = %v", err)
		}
		n++
		if ev.Type == execution.EventResult {
			results = append(results, ev.Result)
		}
	}
	if len(results) != 1 || results[0].Success || results[0].Error == nil || results[0].Error.Code != execution.CodeException {
		t.Fatalf("results = %+v, want one exception", results)
	}
	if !strings.Contains(results[0].Error.Message, "boom") {
		t.Errorf("error message = %q, want it to contain boom", results[0].Error.Message)
	}
	if n != 2 {
		t.Errorf("Events() yielded %d events, want start and result", n)
	}
}

func TestInvalidRequestIsTypedError(t *testing.T) {
	t.Parallel()
	c := client.New(gatewayURL)
	req := &execution.Request{
		Code:              `export default { fetch() { return new Response("never"); } }`,
		TimeoutMs:         -5,
		CompatibilityDate: "yesterday",
	}
	calls := map[string]func() error{
		"Execute": func() error { _, err := c.Execute(t.Context(), req); return err },
		"Stream":  func() error { _, err := c.Stream(t.Context(), req); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := call()
			var gwErr *client.Error
			if !errors.As(err, &gwErr) {
				t.Fatalf("%s() error = %v, want a *client.Error", name, err)
			}
			if gwErr.StatusCode != http.StatusUnprocessableEntity || gwErr.Code != client.CodeInvalidRequest || gwErr.Detail == "" {
				t.Errorf("%s() error = %+v, want 422 invalid_request with a detail", name, gwErr)
			}
			var fields []string
			for _, fe := range gwErr.Errors {
				fields = append(fields, fe.Field)
				if fe.Code == "" || fe.Detail == "" {
					t.Errorf("field problem %+v lacks a code or detail", fe)
				}
			}
			slices.Sort(fields)
			if want := []string{"compatibilityDate", "timeoutMs"}; !slices.Equal(fields, want) {
				t.Errorf("field problems = %v, want %v", fields, want)
			}
			if !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "invalid_request") {
				t.Errorf("Error() = %q, want the status and code", err.Error())
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	key, entry := apitest.NewKey(t, "test")
	opts := testOptions
	opts.Keys = auth.NewKeyring([]auth.Key{entry})
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, opts))
	t.Cleanup(srv.Close)
	req := &execution.Request{Code: `export default { fetch() { return new Response("in"); } }`}

	tests := []struct {
		name     string
		opts     []client.Option
		wantCode string // "" for success
	}{
		{"no key", nil, client.CodeUnauthorized},
		{"wrong key", []client.Option{client.WithAPIKey(key + "x")}, client.CodeUnauthorized},
		{"valid key", []client.Option{client.WithAPIKey(key)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := client.New(srv.URL, tt.opts...).Execute(t.Context(), req)
			if tt.wantCode == "" {
				if err != nil || !res.Success {
					t.Fatalf("Execute() = %+v, %v; want success", res, err)
				}
				return
			}
			var gwErr *client.Error
			if !errors.As(err, &gwErr) || gwErr.StatusCode != http.StatusUnauthorized || gwErr.Code != tt.wantCode {
				t.Fatalf("Execute() error = %v, want 401 %s", err, tt.wantCode)
			}
		})
	}
}

// sleeper logs, then sleeps 60s before answering (its timeout is shorter:
// a caller that waits for it waits 10s, the gateway's default timeout).
const sleeper = `export default { async fetch() {
	console.log("waiting");
	await new Promise(r => setTimeout(r, 60000));
	return new Response("woke");
} }`

func TestCancelStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := client.New(gatewayURL).Stream(ctx, &execution.Request{Code: sleeper})
	if err != nil {
		t.Fatalf("Stream() error = %v", err)
	}
	defer s.Close()
	for s.Next() {
		if ev := s.Event(); ev.Type == execution.EventLog {
			break
		}
	}
	if s.Event().Type != execution.EventLog {
		t.Fatalf("stream ended before the guest's log: %v", s.Err())
	}
	cancel()
	// Had Next waited for the guest (its timeout, 10 s), it would give
	// the result.
	if s.Next() {
		t.Fatalf("Next() after cancel = true (%+v), want false", s.Event())
	}
	if err := s.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
	if s.Result() != nil {
		t.Errorf("Result() = %+v, want nil", s.Result())
	}
}

// TestCancelExecute cancels Execute once its request has gone out whole:
// it returns context.Canceled without waiting for the guest.
func TestCancelExecute(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hc := &http.Client{Transport: sentHook{http.DefaultTransport, cancel}}
	// Had Execute waited for the guest (its timeout, 10 s), it would give
	// the timeout result.
	res, err := client.New(gatewayURL, client.WithHTTPClient(hc)).Execute(ctx, &execution.Request{Code: sleeper})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute() = %+v, %v; want context.Canceled", res, err)
	}
}

// sentHook is a transport calling sent once a request's body has been
// read to its end, that is, sent.
type sentHook struct {
	http.RoundTripper
	sent func()
}

func (h sentHook) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req = req.Clone(req.Context())
		req.Body = &eofHook{ReadCloser: req.Body, eof: h.sent}
	}
	return h.RoundTripper.RoundTrip(req)
}

// eofHook calls eof when its body reaches the end.
type eofHook struct {
	io.ReadCloser
	eof func()
}

func (b *eofHook) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof()
	}
	return n, err
}
