package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/rs/zerolog"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// The credentials the capabilities' service takes. The gateway holds them;
// no guest may ever see them.
const (
	capToken  = "tok-7Qx93vLmZ2"
	capTenant = "tenant-Hk4pW81"
)

// capService is the internal service capabilities call: a real HTTP server
// on loopback that records what reaches it and echoes the Authorization
// header back, in its body and in a header.
type capService struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []capCall
}

type capCall struct {
	Method, Path, Authorization, Tenant, Body string
}

func (s *capService) calls() []capCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// hits counts the calls that reached path.
func (s *capService) hits(path string) int {
	n := 0
	for _, c := range s.calls() {
		if c.Path == path {
			n++
		}
	}
	return n
}

// hitsOutside counts the calls that reached the service outside /api/.
func (s *capService) hitsOutside() int {
	n := 0
	for _, c := range s.calls() {
		if !strings.HasPrefix(c.Path, "/api/") {
			n++
		}
	}
	return n
}

func newCapService() *capService {
	s := &capService{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, capCall{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("X-Tenant"), string(body)})
		s.mu.Unlock()
		if r.URL.Path == "/api/big" {
			writeBig(w, r.Header.Get("Authorization"))
			return
		}
		if r.URL.Path == "/api/stream" {
			n, _ := strconv.Atoi(r.URL.Query().Get("bytes"))
			writeStream(w, n, r.Header.Get("Authorization"))
			return
		}
		if r.URL.Path == "/api/slow" {
			<-r.Context().Done() // answers only when the caller gives up
			return
		}
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Echo-Tenant", r.Header.Get("X-Tenant"))
		fmt.Fprintf(w, "path=%s auth=%s tenant=%s body=%s", r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("X-Tenant"), body)
	}))
	return s // shared by the tests, like the gateway in front of it
}

// bigEchoes is how many times /api/big echoes the Authorization header.
const bigEchoes = 60

// writeBig answers with the Authorization header echoed bigEchoes times
// among 3 KB of filler each, flushed in chunks of 4099 bytes (no
// Content-Length), so that chunks split the echoes at every offset.
func writeBig(w http.ResponseWriter, auth string) {
	var body strings.Builder
	for range bigEchoes {
		body.WriteString(strings.Repeat("x", 3000) + auth)
	}
	data := body.String()
	for len(data) > 0 {
		n := min(4099, len(data))
		_, _ = io.WriteString(w, data[:n])
		w.(http.Flusher).Flush()
		data = data[n:]
	}
}

// streamBlock is the size of the blocks /api/stream writes.
const streamBlock = 64 << 10

// writeStream answers with n bytes (no Content-Length), in blocks of
// streamBlock bytes, each holding the Authorization header once among
// filler: a long answer for masking to stream through.
func writeStream(w http.ResponseWriter, n int, auth string) {
	block := []byte(strings.Repeat("filler text, ", streamBlock/13+1)[:streamBlock])
	copy(block[streamBlock/2:], auth)
	for n > 0 {
		k := min(n, len(block))
		if _, err := w.Write(block[:k]); err != nil {
			return
		}
		n -= k
	}
}

// capFixture is a gateway with capabilities configured, on its own pool
// whose capabilities' network reaches the service, and two API keys.
type capFixture struct {
	url       string
	service   *capService
	ci, other string             // API keys: "ci" may use every capability, "other" not "scoped"
	logs      *loadertest.Buffer // the gateway's and the runtime's log
	pool      *local.Pool
}

var (
	capOnce   sync.Once
	capShared *capFixture
)

func capabilityGateway(t testing.TB) *capFixture {
	t.Helper()
	capOnce.Do(func() { capShared = startCapabilityGateway(t) })
	if capShared == nil {
		t.Fatal("capability gateway failed to start in an earlier test")
	}
	return capShared
}

func startCapabilityGateway(t testing.TB) *capFixture {
	service := newCapService()
	base := service.srv.URL + "/api/"
	secrets := []string{capToken, capTenant, "Bearer " + capToken}
	caps := executions.Capabilities{
		"inventory": {URL: base, Headers: map[string]string{"authorization": "Bearer " + capToken, "x-tenant": capTenant},
			Methods: []string{"GET", "POST"}, TimeoutMs: 5000, MaxCalls: 40, Secrets: secrets},
		"limited": {URL: base, Headers: map[string]string{"authorization": "Bearer " + capToken}, Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 3, Secrets: secrets},
		"scoped":  {URL: base, Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 5, Keys: []string{"ci"}},
		"slow":    {URL: base, Methods: []string{"GET"}, TimeoutMs: 300, MaxCalls: 5},
		"bench":   {URL: base, Headers: map[string]string{"authorization": "Bearer " + capToken}, Methods: []string{"GET"}, TimeoutMs: 60000, MaxCalls: 1000, Secrets: secrets},
		"open":    {URL: base, Methods: []string{"GET"}, TimeoutMs: 60000, MaxCalls: 5, ForwardHeaders: []string{"accept"}, MaxAnswerBytes: 64 << 20},
	}
	ci, ciKey := apitest.NewKey(t, "ci")
	other, otherKey := apitest.NewKey(t, "other")
	logs := &loadertest.Buffer{}
	log := zerolog.New(logs)
	// Not t.Cleanup: the fixture (service, pool, gateway) outlives the
	// test that starts it; it ends with the test binary.
	pool := loadertest.StartLocal(t, log, loadertest.Processes(1), func(c *local.Config) {
		c.CapabilityURLs = []string{base}
	})
	opts := apitest.Options()
	opts.Keys = auth.NewKeyring([]auth.Key{ciKey, otherKey})
	opts.Capabilities = caps
	srv := httptest.NewServer(apitest.Serve(t, log, pool, opts))
	return &capFixture{url: srv.URL, service: service, ci: ci, other: other, logs: logs, pool: pool}
}

// call posts body to path with key and returns the status and the body.
func (f *capFixture) call(t *testing.T, key, method, path string, body any) (int, []byte) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, f.url+path, reader)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, data := do(t, req)
	return resp.StatusCode, data
}

// run executes code with the given capabilities (and other request members)
// as key "ci" and returns the result, checked against openapi.yaml.
func (f *capFixture) run(t *testing.T, code string, caps []string, more map[string]any) *execution.Result {
	t.Helper()
	body := map[string]any{"code": code}
	if caps != nil {
		body["capabilities"] = caps
	}
	for k, v := range more {
		body[k] = v
	}
	status, data := f.call(t, f.ci, http.MethodPost, "/execute", body)
	if status != http.StatusOK {
		t.Fatalf("POST /execute = %d %s, want 200", status, data)
	}
	matchesSchema(t, "ExecuteResult", data)
	var res execution.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// matchesSchema fails if data does not match the named schema of
// openapi.yaml.
func matchesSchema(t *testing.T, name string, data []byte) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		t.Fatal(err)
	}
	if err := doc.Components.Schemas[name].Value.VisitJSON(value); err != nil {
		t.Errorf("%s does not match %s: %v", data, name, err)
	}
}

// noCredentials fails if text holds a credential in any spelling a masker
// would miss (reversed) or catch (plain).
func noCredentials(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range []string{capToken, capTenant} {
		if strings.Contains(text, secret) || strings.Contains(text, reverse(secret)) {
			t.Errorf("%s shows a credential: %s", what, text)
		}
	}
}

func reverse(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}
