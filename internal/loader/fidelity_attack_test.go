package loader_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// TestStacksHideTheWrapperFromHostileGuests runs guests that look for the
// capture wrapper's frames from every place where guest code runs inside
// or across the capture: callbacks of the console, a rejection the
// capture reports, an error the capture reads as the result, the guest's
// own prepareStackTrace, ctx.waitUntil. Each smuggles what it saw out in
// base64, past the shim's cleaning of logs and results, so the check is
// of what the guest itself read. What it saw must hold its own frame and
// none of the wrapper's.
func TestStacksHideTheWrapperFromHostileGuests(t *testing.T) {
	t.Parallel()
	pool := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { pool.Close() })
	handler, _ := apitest.Handler(t, zerolog.Nop(), pool, apitest.Options())
	gateway := httptest.NewServer(handler)
	t.Cleanup(gateway.Close)

	// leak(text) logs text in base64, marked; every guest defines it.
	const leak = `const leak = (what) => console.log("LEAK " + btoa(typeof what === "string" ? what : JSON.stringify(what)));
function sites() {
  const saved = Error.prepareStackTrace;
  Error.prepareStackTrace = (e, s) => s.map((c) => [c.getFileName(), c.getFunctionName(), typeof c.getFunction(), typeof c.getThis()].join(" "));
  try { return new Error("sites").stack; } finally { Error.prepareStackTrace = saved; }
}
`
	cases := map[string]string{
		"console toString": `export default { fetch() {
  console.log("%s", { toString() { leak(new Error("mark").stack); leak(sites()); return "x"; } });
  return new Response("ok");
} }`,
		"console getter of an inspected object": `export default { fetch() {
  console.log({ get loud() { leak(new Error("mark").stack); return 1; } }, new Proxy({}, { ownKeys(t) { leak(sites()); leak(new Error("mark").stack); return []; } }));
  return new Response("ok");
} }`,
		"stack getter read by the result": `export default { fetch() {
  const e = new Error("thrown");
  Object.defineProperty(e, "stack", { get() { leak(new Error("mark").stack); leak(sites()); return "s"; } });
  throw e;
} }`,
		"name getter of the result's error": `export default { fetch() {
  throw { message: "m", get name() { leak(new Error("mark").stack); return "N"; } };
} }`,
		"unhandled rejection reported by the capture": `export default { async fetch() {
  const e = new Error("rejected");
  Object.defineProperty(e, "stack", { get() { leak(new Error("mark").stack); return "s"; } });
  Promise.reject(e);
  await new Promise((r) => setTimeout(r, 20));
  return new Response("ok");
} }`,
		"prepareStackTrace replaced, callsites listed": `export default { fetch() {
  Error.prepareStackTrace = (e, s) => s.map((c) => c.getFileName() + ":" + c.getFunctionName());
  leak(new Error("mark").stack);
  Error.prepareStackTrace = undefined;
  leak(new Error("mark").stack);
  return new Response("ok");
} }`,
		"filter attacked first": `export default { fetch() {
  try { delete Error.prepareStackTrace; } catch {}
  try { Object.defineProperty(Error, "prepareStackTrace", { value: undefined }); } catch {}
  try { Object.setPrototypeOf(Error, null); } catch {}
  Error.stackTraceLimit = Infinity;
  globalThis.Error = function Error() {};
  try { null.x; } catch (e) { leak(e.stack); }
  return new Response("ok");
} }`,
		"ctx.waitUntil misused": `export default { async fetch(request, env, ctx) {
  try { ctx.waitUntil.call({}, Promise.resolve()); } catch (e) { leak(e.stack); }
  ctx.waitUntil((async () => { await null; leak(new Error("mark").stack); leak(sites()); })());
  return new Response("ok");
} }`,
		"async frames through the capture": `export default { async fetch() {
  await null;
  await new Promise((r) => setTimeout(r, 1));
  leak(new Error("mark").stack);
  leak(sites());
  return new Response("ok");
} }`,
		"top-level code": `leak(new Error("mark").stack); leak(sites());
export default { fetch() { return new Response("ok"); } }`,
		"console.trace": `export default { fetch() {
  const saved = console.error;
  console.trace("t");
  return new Response("ok");
} }`,
	}
	for name, code := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body, _ := json.Marshal(map[string]any{"modules": map[string]string{"main.js": leak + code}, "mainModule": "main.js"})
			resp, err := http.Post(gateway.URL+"/execute", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var result struct {
				Stdout, Stderr string
				Error          *struct{ Stack string }
			}
			if err := json.Unmarshal(raw, &result); err != nil {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			var seen []string
			for _, line := range strings.Split(result.Stdout, "\n") {
				if b64, ok := strings.CutPrefix(line, "LEAK "); ok {
					text, err := base64.StdEncoding.DecodeString(b64)
					if err != nil {
						t.Fatalf("leak %q: %v", b64, err)
					}
					seen = append(seen, string(text))
				}
			}
			if name == "console.trace" {
				seen = append(seen, result.Stderr) // cleaned by the shim too, but must hold no wrapper frame at all
			}
			if len(seen) == 0 {
				t.Fatalf("the guest leaked nothing (the probe did not run): %s", raw)
			}
			for _, text := range seen {
				if strings.Contains(text, "__dw_") {
					t.Errorf("the guest saw the wrapper's frames:\n%s", text)
				}
				if !strings.Contains(text, "main.js") {
					t.Errorf("the guest did not see its own frame:\n%s", text)
				}
			}
		})
	}
}
