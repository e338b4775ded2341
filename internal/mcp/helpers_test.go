package mcp_test

import (
	"bufio"
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

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// The tests share one real workerd runtime; each gateway is an httptest
// server running the real API handler on it.
var shared struct {
	once    sync.Once
	backend *local.Pool
}

func TestMain(m *testing.M) {
	transpile.MaybeServeChild()
	code := m.Run()
	if shared.backend != nil {
		shared.backend.Close()
	}
	os.Exit(code)
}

// gateway starts a gateway with the test options, changed by change.
func gateway(t *testing.T, change func(*apitest.Gateway)) string {
	t.Helper()
	return loggedGateway(t, change, io.Discard)
}

// loggedGateway starts a gateway that writes its log to w.
func loggedGateway(t *testing.T, change func(*apitest.Gateway), w io.Writer) string {
	t.Helper()
	log := zerolog.New(w)
	shared.once.Do(func() { shared.backend = loadertest.StartLocal(t, log) })
	if shared.backend == nil {
		t.Fatal("the runtime failed to start in an earlier test")
	}
	opts := apitest.Options()
	opts.OpenAPI = []byte("openapi: 3.1.0\n")
	if change != nil {
		change(&opts)
	}
	srv := httptest.NewServer(apitest.Serve(t, log, shared.backend, opts))
	t.Cleanup(srv.Close)
	return srv.URL
}

// keys configures API keys: name → quota (Revoked marks a revoked key).
// It returns the key each name sends.
func keys(t *testing.T, opts *apitest.Gateway, want map[string]auth.Key) map[string]string {
	t.Helper()
	sent := map[string]string{}
	var list []auth.Key
	for name, k := range want {
		key, entry := apitest.NewKey(t, name)
		k.Name, k.Hash = entry.Name, entry.Hash
		list = append(list, k)
		sent[name] = key
	}
	opts.Keys = auth.NewKeyring(list)
	opts.Quota = executions.Quota{Requests: 100, Window: time.Minute, Concurrency: 4}
	return sent
}

// bearer adds an Authorization header to every request.
type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// connect opens an MCP session with the SDK's own client; key may be empty.
func connect(t *testing.T, base, key string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	session, err := dial(t, base, key, opts)
	if err != nil {
		t.Fatalf("Connect(%s/mcp) = %v", base, err)
	}
	t.Cleanup(func() { session.Close() })
	return session
}

func dial(t *testing.T, base, key string, opts *sdk.ClientOptions) (*sdk.ClientSession, error) {
	transport := &sdk.StreamableClientTransport{Endpoint: base + "/mcp", MaxRetries: -1}
	if key != "" {
		transport.HTTPClient = &http.Client{Transport: bearer{key}}
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "gateway-test", Version: "1"}, opts)
	return client.Connect(t.Context(), transport, nil)
}

// call calls the execute tool with args.
func call(t *testing.T, s *sdk.ClientSession, args any) *sdk.CallToolResult {
	t.Helper()
	res, err := s.CallTool(t.Context(), &sdk.CallToolParams{Name: "execute", Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(execute) = %v", err)
	}
	return res
}

// structured decodes a result's structured content as a JSON object.
func structured(t *testing.T, res *sdk.CallToolResult) map[string]any {
	t.Helper()
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("structuredContent %s is not an object: %v", data, err)
	}
	return m
}

// text returns a result's text content.
func text(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("content has %d parts, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("content is %T, want text", res.Content[0])
	}
	return tc.Text
}

// rpc is one raw JSON-RPC exchange over HTTP.
type rpc struct {
	status  int
	header  http.Header
	body    []byte
	events  []map[string]any // the JSON-RPC messages of an SSE answer, in order
	message map[string]any   // the JSON-RPC response among them (or the JSON body)
}

// post sends one JSON-RPC message to /mcp as a Streamable HTTP client does.
func post(t *testing.T, base string, header map[string]string, msg string) rpc {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/mcp", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) rpc {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := rpc{status: resp.StatusCode, header: resp.Header, body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		out.events = sseMessages(t, body)
		for _, m := range out.events {
			if _, ok := m["id"]; ok {
				out.message = m
			}
		}
	} else if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/problem+json") {
		_ = json.Unmarshal(body, &out.message)
	}
	return out
}

// sseMessages parses a text/event-stream body into its events' JSON data.
func sseMessages(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	var data strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 4<<20)
	flush := func() {
		if data.Len() == 0 {
			return
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(data.String()), &m); err != nil {
			t.Fatalf("SSE data %q is not JSON: %v", data.String(), err)
		}
		out = append(out, m)
		data.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	flush()
	return out
}

// postExecute posts body to /execute and returns the decoded JSON result.
func postExecute(t *testing.T, base, key string, body any) (int, map[string]any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/execute", bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	r := do(t, req)
	return r.status, r.message
}

// within bounds a wait in a test.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
