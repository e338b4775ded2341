package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// operatorGateway is a gateway with records and two keys: ci may run code,
// prom (scope metrics) may only read the metrics.
type operatorGateway struct {
	url      string
	logs     *loadertest.Buffer
	ci, prom string
}

func newOperatorGateway(t *testing.T) *operatorGateway {
	t.Helper()
	gatewayURL(t) // the shared runtime
	g := &operatorGateway{logs: &loadertest.Buffer{}}
	ci, ciKey := apitest.NewKey(t, "ci")
	prom, promKey := apitest.NewKey(t, "prom")
	promKey.Scope = auth.ScopeMetrics
	g.ci, g.prom = ci, prom
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := apitest.Options()
	o.Keys = auth.NewKeyring([]auth.Key{ciKey, promKey})
	o.Store = st
	srv := httptest.NewServer(apitest.Serve(t, zerolog.New(g.logs), shared.backend, o))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// do sends method path with key (if any) and body (if any), and returns
// the answer and its body.
func (g *operatorGateway) do(t *testing.T, method, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, g.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("User-Agent", "operator-test/1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// TestMetricsScope: a key of scope metrics reads GET /metrics and nothing
// else (403 insufficient_scope, saying why); a key that runs code reads
// the metrics too; no key reads nothing.
func TestMetricsScope(t *testing.T) {
	t.Parallel()
	g := newOperatorGateway(t)
	code := `{"code": "export default { fetch() { return new Response('ok'); } }"}`
	tests := []struct {
		method, path, key, body string
		status                  int
	}{
		{"GET", "/metrics", g.prom, "", 200},
		{"GET", "/metrics", g.ci, "", 200},
		{"GET", "/metrics", "", "", 401},
		{"POST", "/execute", g.prom, code, 403},
		{"POST", "/executions", g.prom, code, 403},
		{"GET", "/executions", g.prom, "", 403},
		{"GET", "/executions/ex_any", g.prom, "", 403},
		{"GET", "/capabilities", g.prom, "", 403},
		{"POST", "/mcp", g.prom, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, 403},
		{"GET", "/scripts", g.prom, "", 403},
		{"PUT", "/scripts/hello", g.prom, code, 403},
		{"GET", "/scripts/hello", g.prom, "", 403},
		{"DELETE", "/scripts/hello", g.prom, "", 403},
		{"GET", "/scripts/hello/versions", g.prom, "", 403},
		{"GET", "/scripts", g.ci, "", 200},
		{"POST", "/execute", g.ci, code, 200},
	}
	for _, tt := range tests {
		resp, data := g.do(t, tt.method, tt.path, tt.key, tt.body)
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s (%s) = %d %s, want %d", tt.method, tt.path, keyName(g, tt.key), resp.StatusCode, data, tt.status)
			continue
		}
		if tt.status != 403 {
			continue
		}
		var p api.Problem
		_ = json.Unmarshal(data, &p)
		if p.Code != execution.ProblemInsufficientScope || !strings.Contains(p.Detail, "GET /metrics") ||
			!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("%s %s (prom) = %+v, WWW-Authenticate %q; want insufficient_scope saying what the key may do",
				tt.method, tt.path, p, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if !strings.Contains(g.logs.String(), `"key":"prom","scope":"metrics","message":"key not allowed this route"`) {
		t.Errorf("the refusals are not logged with the key's name:\n%s", g.logs.String())
	}
}

func keyName(g *operatorGateway, key string) string {
	switch key {
	case g.ci:
		return "ci"
	case g.prom:
		return "prom"
	}
	return "no key"
}

// TestUnknownQueryParameters: a query parameter a route does not take is
// refused 400, naming it and what the route takes, before anything is
// done: a client guessing ?after= for ?cursor= learns it.
func TestUnknownQueryParameters(t *testing.T) {
	t.Parallel()
	g := newOperatorGateway(t)
	code := `{"code": "export default { fetch() { return new Response('ok'); } }"}`
	tests := []struct {
		method, path, body string
		unknown            []string // nil: accepted
		takes              string
	}{
		{"GET", "/executions?after=X", "", []string{"after"}, "status, limit, cursor"},
		{"GET", "/executions?status=finished&limit=5&page=2&sort=asc", "", []string{"page", "sort"}, "status, limit, cursor"},
		{"GET", "/executions?status=finished&limit=5", "", nil, ""},
		{"POST", "/execute?debug=1", code, []string{"debug"}, "no query parameters"},
		{"POST", "/executions?callbackUrl=x", code, []string{"callbackUrl"}, "no query parameters"},
		{"GET", "/executions/ex_none/events?after=0&from=3", "", []string{"from"}, "after"},
		{"GET", "/capabilities?all", "", []string{"all"}, "no query parameters"},
		{"GET", "/scripts?limit=5", "", []string{"limit"}, "no query parameters"},
		{"PUT", "/scripts/hello?version=2", code, []string{"version"}, "no query parameters"},
		{"GET", "/scripts/hello/versions?cursor=x", "", []string{"cursor"}, "no query parameters"},
	}
	for _, tt := range tests {
		resp, data := g.do(t, tt.method, tt.path, g.ci, tt.body)
		if tt.unknown == nil {
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s = %d %s, want 200", tt.method, tt.path, resp.StatusCode, data)
			}
			continue
		}
		var p api.Problem
		_ = json.Unmarshal(data, &p)
		var named []string
		for _, e := range p.Errors {
			named = append(named, e.Field)
		}
		if resp.StatusCode != http.StatusBadRequest || p.Code != execution.ProblemUnknownParameter ||
			strings.Join(named, ",") != strings.Join(tt.unknown, ",") || !strings.Contains(p.Detail, tt.takes) {
			t.Errorf("%s %s = %d %+v, want 400 unknown_parameter naming %v and saying it takes %s", tt.method, tt.path, resp.StatusCode, p, tt.unknown, tt.takes)
		}
	}
	// Nothing was queued by the refused submission.
	_, data := g.do(t, "GET", "/executions", g.ci, "")
	var page execution.RecordList
	_ = json.Unmarshal(data, &page)
	if len(page.Executions) != 0 {
		t.Errorf("GET /executions = %+v, want none: only refused requests were made", page.Executions)
	}
}

// TestAccessLines: every request has a request id (req_…), in its header
// and its log line, with its remote address and user agent; an execution
// id (ex_…) only a request that started an execution, the same in its
// header, its access line and its audit line.
func TestAccessLines(t *testing.T) {
	t.Parallel()
	g := newOperatorGateway(t)
	refused, _ := g.do(t, "GET", "/executions", "dwk_not_a_key", "")
	scraped, _ := g.do(t, "GET", "/metrics", g.prom, "")
	ran, _ := g.do(t, "POST", "/execute", g.ci, `{"code": "export default { fetch() { return new Response('ok'); } }"}`)
	// A request's access line is written once its handler has returned,
	// which may be after its client has the answer.
	testwait.Until(10*time.Second, func() bool {
		for line := range strings.SplitSeq(g.logs.String(), "\n") {
			if strings.Contains(line, `"request_id":"`+ran.Header.Get(api.RequestIDHeader)+`"`) && strings.Contains(line, `"message":"request"`) {
				return true
			}
		}
		return false
	})
	lines := map[string]map[string]any{} // request id → its access line
	var audits []map[string]any
	for _, line := range strings.Split(g.logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		switch entry["message"] {
		case "request":
			lines[entry["request_id"].(string)] = entry
		case "execution finished":
			audits = append(audits, entry)
		}
	}
	for name, resp := range map[string]*http.Response{"refused": refused, "scraped": scraped, "ran": ran} {
		id := resp.Header.Get(api.RequestIDHeader)
		line := lines[id]
		if !strings.HasPrefix(id, "req_") || line == nil {
			t.Errorf("%s: X-Request-Id %q, access line %v; want req_… and its line", name, id, line)
			continue
		}
		if remote, _ := line["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") || line["user_agent"] != "operator-test/1.0" {
			t.Errorf("%s: access line %v, want the remote address and user agent", name, line)
		}
		exec := resp.Header.Get(api.ExecutionIDHeader)
		if (name == "ran") != (exec != "") || line["execution_id"] != nil && line["execution_id"] != exec {
			t.Errorf("%s: X-Execution-Id %q, access line's execution_id %v; want one only for the execution, the same", name, exec, line["execution_id"])
		}
	}
	id := ran.Header.Get(api.ExecutionIDHeader)
	if len(audits) != 1 || audits[0]["execution_id"] != id || audits[0]["request_id"] != ran.Header.Get(api.RequestIDHeader) {
		t.Errorf("audit lines %v, want one with execution_id %s and its request's id", audits, id)
	}
}
