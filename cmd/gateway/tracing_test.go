package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// otlpReceiver is an OTLP/HTTP collector at the seam: it decodes each
// export (protobuf, as the gateway's exporter sends it) into its spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	bad   []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, _ := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		o.bad = append(o.bad, r.URL.Path+" "+r.Header.Get("Content-Type"))
	}
	if err := proto.Unmarshal(data, &req); err != nil {
		o.bad = append(o.bad, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

// byName returns the spans, by name (the first of each).
func (o *otlpReceiver) byName() map[string]*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range o.spans {
		if _, ok := out[s.Name]; !ok {
			out[s.Name] = s
		}
	}
	return out
}

// heard is a service that keeps the traceparent of each request.
type heard struct {
	mu     sync.Mutex
	parent []string
}

func (h *heard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.parent = append(h.parent, r.Header.Get("traceparent"))
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"count":7}`))
}

func (h *heard) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.parent...)
}

// TestTraceOfAnAsyncExecution drives the gateway as main does, with the
// standard OTEL_* variables pointing at an OTLP receiver: one queued
// TypeScript execution with a dependency that calls a capability and has a
// callback, under a caller's traceparent, is one trace, every span in place, the
// capability's service and the webhook receiver each handed the
// traceparent of its call's span; its record and its log lines carry the
// trace id; no span holds its code or secrets.
func TestTraceOfAnAsyncExecution(t *testing.T) {
	otlp := &otlpReceiver{}
	collector := httptest.NewServer(otlp)
	defer collector.Close()
	inventory, hook := &heard{}, &heard{}
	svc := httptest.NewServer(inventory)
	defer svc.Close()
	receiver := httptest.NewServer(hook)
	defer receiver.Close()
	caps, _ := json.Marshal(map[string]any{"inventory": map[string]any{"url": svc.URL + "/api/", "headers": map[string]string{"Authorization": "Bearer cap-token-marker"}}})
	reg := packagestest.New(t)
	reg.Add(t, "solo", "1.0.0", map[string]any{"type": "module", "main": "index.js"}, map[string]string{"index.js": "export const solo = 'one';"})
	g := startServing(t, map[string]string{
		"GATEWAY_PACKAGES_REGISTRY":       reg.URL(),
		"OTEL_EXPORTER_OTLP_ENDPOINT":     collector.URL,
		"OTEL_SERVICE_NAME":               "gateway-under-test",
		"GATEWAY_CAPABILITIES":            string(caps),
		"GATEWAY_CALLBACKS_SECRET":        "trace-test-callback-secret",
		"GATEWAY_CALLBACKS_ALLOW_PRIVATE": "true",
	})
	const caller, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, _ := json.Marshal(map[string]any{
		"language": "typescript",
		"code": `import { solo } from "solo";
const r: Response = await env.inventory.fetch("/api/items");
console.log("items", (await r.json()).count, env.TOKEN.length, solo);
return "done";`,
		"capabilities": []string{"inventory"},
		"dependencies": map[string]string{"solo": "^1"},
		"secrets":      map[string]string{"TOKEN": "secret-marker-value"},
		"callbackUrl":  receiver.URL + "/hook",
	})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+"/executions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+caller+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc execution.Accepted
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /executions = %d", resp.StatusCode)
	}
	if !testwait.Until(60*time.Second, func() bool { return len(hook.got()) > 0 }) {
		t.Fatalf("no callback within 60s:\n%s", g.stdout.String())
	}
	var rec execution.Record
	getJSON(t, g.base+"/executions/"+acc.ID, &rec)
	if rec.TraceID != caller || rec.Result == nil || !rec.Result.Success {
		t.Fatalf("record traceId %q, result %+v; want %s and success", rec.TraceID, rec.Result, caller)
	}
	if len(rec.Result.Outbound) != 1 || rec.Result.Outbound[0].Trace != nil || strings.Contains(string(mustJSON(t, rec)), "spanId") {
		t.Errorf("outbound %+v: want the one call, without the shim's span report", rec.Result.Outbound)
	}
	g.stop(t) // exports what is buffered

	spans := otlp.byName()
	want := map[string]string{ // span → its parent's name ("" the caller's)
		"POST /executions": "", "admission": "POST /executions", "queue wait": "POST /executions",
		"execution": "POST /executions", "dependencies": "execution", "transpile": "execution", "bundle": "execution", "runtime": "execution",
		"capability inventory": "runtime", "webhook attempt": "POST /executions",
	}
	for name, parentName := range want {
		s := spans[name]
		if s == nil {
			t.Errorf("no span %q among %v", name, names(spans))
			continue
		}
		if got := hex.EncodeToString(s.TraceId); got != caller {
			t.Errorf("span %q has trace %s, want the caller's %s", name, got, caller)
		}
		wantParent := parent
		if parentName != "" && spans[parentName] != nil {
			wantParent = hex.EncodeToString(spans[parentName].SpanId)
		}
		if got := hex.EncodeToString(s.ParentSpanId); got != wantParent {
			t.Errorf("span %q has parent %s, want %s (%q)", name, got, wantParent, parentName)
		}
		if name != "POST /executions" && name != "webhook attempt" && attr(s, "gateway.execution_id") != acc.ID {
			t.Errorf("span %q has execution id %q, want %s", name, attr(s, "gateway.execution_id"), acc.ID)
		}
	}
	// In the order they happen: resolved, compiled, bundled, then run.
	for _, pair := range [][2]string{{"dependencies", "transpile"}, {"transpile", "bundle"}, {"bundle", "runtime"}} {
		if a, b := spans[pair[0]], spans[pair[1]]; a != nil && b != nil && a.EndTimeUnixNano > b.StartTimeUnixNano {
			t.Errorf("span %q ends at %d, after %q starts at %d", pair[0], a.EndTimeUnixNano, pair[1], b.StartTimeUnixNano)
		}
	}
	if s := spans["admission"]; s != nil && attr(s, "gateway.key") != "anonymous" {
		t.Errorf("admission's key = %q, want anonymous", attr(s, "gateway.key"))
	}
	if s := spans["execution"]; s != nil && attr(s, "gateway.outcome") != "success" {
		t.Errorf("execution's outcome = %q, want success", attr(s, "gateway.outcome"))
	}
	// The services were handed their call's span.
	if s := spans["capability inventory"]; s != nil {
		if got, want := inventory.got(), "00-"+caller+"-"+hex.EncodeToString(s.SpanId)+"-01"; len(got) != 1 || got[0] != want {
			t.Errorf("the capability's service got traceparent %q, want %q", got, want)
		}
		if s.EndTimeUnixNano < s.StartTimeUnixNano || s.StartTimeUnixNano < spans["runtime"].GetStartTimeUnixNano() {
			t.Errorf("capability span from %d to %d, runtime's from %d: want it within", s.StartTimeUnixNano, s.EndTimeUnixNano, spans["runtime"].GetStartTimeUnixNano())
		}
	}
	if s := spans["webhook attempt"]; s != nil {
		if got, want := hook.got(), "00-"+caller+"-"+hex.EncodeToString(s.SpanId)+"-01"; got[0] != want {
			t.Errorf("the webhook receiver got traceparent %q, want %q", got, want)
		}
	}
	if s := spans["queue wait"]; s != nil && s.EndTimeUnixNano <= s.StartTimeUnixNano {
		t.Errorf("queue wait from %d to %d: want a duration", s.StartTimeUnixNano, s.EndTimeUnixNano)
	}
	for _, s := range otlp.spans {
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); strings.Contains(v, "marker") || strings.Contains(v, "inventory.fetch") {
				t.Errorf("span %q attribute %s = %s: code, env or a capability's secret in a span", s.Name, kv.Key, v)
			}
		}
	}
	// The log lines of the submission and of the run carry the trace id.
	log := g.stdout.String()
	for _, msg := range []string{`"route":"/executions"`, `"message":"execution finished"`} {
		if !lineHas(log, msg, `"trace_id":"`+caller+`"`) {
			t.Errorf("no line with %s carries the trace id:\n%s", msg, log)
		}
	}
	if len(otlp.bad) > 0 {
		t.Errorf("the receiver refused exports: %v", otlp.bad)
	}
}

// TestNoTracingByDefault: without OTEL_* variables no traceparent is read or
// sent on, and a record has no trace id.
func TestNoTracingByDefault(t *testing.T) {
	inventory := &heard{}
	svc := httptest.NewServer(inventory)
	defer svc.Close()
	caps, _ := json.Marshal(map[string]any{"inventory": map[string]any{"url": svc.URL + "/api/"}})
	g := startServing(t, map[string]string{"GATEWAY_CAPABILITIES": string(caps)})
	defer g.stop(t)
	body := `{"code": "await env.inventory.fetch('/api/x'); return 1;", "capabilities": ["inventory"]}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+"/execute", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res execution.Result
	_ = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if !res.Success {
		t.Fatalf("result %+v, want success", res)
	}
	var rec execution.Record
	getJSON(t, g.base+"/executions/"+res.ID, &rec)
	if got := inventory.got(); rec.TraceID != "" || len(got) != 1 || got[0] != "" {
		t.Errorf("record traceId %q, service got traceparent %q; want none of either", rec.TraceID, got)
	}
	if strings.Contains(g.stdout.String(), "trace_id") || !strings.Contains(g.stdout.String(), `"tracing":"off"`) {
		t.Errorf("log has trace ids, or does not say tracing is off:\n%s", g.stdout.String())
	}
}

func names(spans map[string]*tracepb.Span) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func lineHas(log string, all ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
