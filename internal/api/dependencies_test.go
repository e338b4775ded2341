// End-to-end tests of executions with npm dependencies: real packages
// resolved by npm from a test registry (the fixtures; PACKAGES_TEST_REGISTRY
// points them at a real one), bundled, and run in the real workerd behind
// the real HTTP API.
package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// depsGateway serves a gateway on the shared runtime whose dependencies
// come from reg, with o's changes to the default bounds.
func depsGateway(t testing.TB, reg *packagestest.Registry, o ...func(*packages.Options)) string {
	t.Helper()
	gatewayURL(t) // the shared runtime
	opts := packages.Options{Registry: reg.URL(), Dir: t.TempDir(), MaxPackages: 500, MaxBytes: 100 << 20,
		ResolveTimeout: 60 * time.Second, Refresh: 10 * time.Minute}
	for _, f := range o {
		f(&opts)
	}
	m, err := packages.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	g := apitest.Options()
	g.Limits = testLimits
	g.Packages = m
	h, _ := apitest.Handler(t, zerolog.Nop(), shared.backend, g)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// postTo posts body to url's path and returns the status, the decoded
// problem or result, and the raw body.
func postTo(t testing.TB, url, path string, body any) (int, []byte) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return postRaw(t, url+path, data)
}

// postRaw posts data to url, a Retry-After header first in what it
// returns.
func postRaw(t testing.TB, url string, data []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		return resp.StatusCode, append([]byte("Retry-After:"+ra+"\n"), buf.Bytes()...)
	}
	return resp.StatusCode, buf.Bytes()
}

// realDeps are the fixture packages, all in one set: resolved once, then
// each test's imports bundled from it.
var realDeps = map[string]string{"hono": "4.6.3", "zod": "^3.23.0", "date-fns": "4.1.0", "nanoid": "5.0.9", "@cf-wasm/png": "0.4.0"}

var realGateway struct {
	once sync.Once
	url  string
}

// TestRealPackages runs real packages through POST /execute: Hono with
// hono/cors, zod, date-fns, nanoid, and @cf-wasm/png, whose .wasm module
// runs in the isolate.
func TestRealPackages(t *testing.T) {
	t.Parallel()
	realGateway.once.Do(func() { realGateway.url = depsGateway(t, packagestest.Upstream(t)) })
	url := realGateway.url
	cases := []struct {
		name, code string
		request    map[string]any
		want       func(*execution.Result) string
	}{
		{"hono", `import { Hono } from "hono";
import { cors } from "hono/cors";
const app = new Hono();
app.use("*", cors({ origin: "https://example.com" }));
app.get("/hello/:name", (c) => c.json({ hello: c.req.param("name") }));
export default app;`, map[string]any{"url": "/hello/hono", "headers": map[string]string{"Origin": "https://example.com"}},
			func(r *execution.Result) string {
				if r.Response.Body != `{"hello":"hono"}` || r.Response.Headers["access-control-allow-origin"] != "https://example.com" {
					return fmt.Sprintf("response %+v, want the JSON and the CORS header", r.Response)
				}
				return ""
			}},
		{"zod", `import { z } from "zod";
const User = z.object({ name: z.string(), age: z.number().int().positive() });
export default { fetch() {
  console.log(JSON.stringify(User.parse({ name: "Ada", age: 36 })));
  const bad = User.safeParse({ name: "Bob", age: -1 });
  return new Response(bad.success ? "passed" : bad.error.issues[0].path.join("."));
} };`, nil, func(r *execution.Result) string {
			if r.Stdout != `{"name":"Ada","age":36}` || r.Response.Body != "age" {
				return fmt.Sprintf("stdout %q body %q, want the parsed user and the bad field", r.Stdout, r.Response.Body)
			}
			return ""
		}},
		{"date-fns", `import { format, addDays } from "date-fns";
export default { fetch() { return new Response(format(addDays(new Date(0), 1), "yyyy-MM-dd")); } };`, nil,
			func(r *execution.Result) string {
				if r.Response.Body != "1970-01-02" {
					return "body " + r.Response.Body + ", want 1970-01-02"
				}
				return ""
			}},
		{"nanoid", `import { nanoid, customAlphabet } from "nanoid";
export default { fetch() { const id = nanoid(); return new Response(id.length + " " + customAlphabet("ab", 8)().replace(/[ab]/g, "")); } };`, nil,
			func(r *execution.Result) string {
				if r.Response.Body != "21 " {
					return "body " + r.Response.Body + ", want 21 and only the alphabet"
				}
				return ""
			}},
		{"nanoid in a plain script", `import { nanoid } from "nanoid";
import { z } from "zod";
console.log("made", nanoid().length);
return z.string().parse("checked") + " " + nanoid(5).length;`, nil,
			func(r *execution.Result) string {
				if r.Mode != execution.ModeScript || r.Stdout != "made 21" || string(r.ReturnValue) != `"checked 5"` {
					return fmt.Sprintf("mode %q stdout %q returnValue %s, want the script's imports at module level", r.Mode, r.Stdout, r.ReturnValue)
				}
				return ""
			}},
		{"wasm", `import { encode, decode } from "@cf-wasm/png";
export default { fetch() {
  const png = encode(new Uint8Array([255, 0, 0, 255]), 1, 1);
  const back = decode(png);
  return new Response([...png.slice(1, 4)].map((c) => String.fromCharCode(c)).join("") + " " + back.width + "x" + back.height);
} };`, nil, func(r *execution.Result) string {
			if r.Response.Body != "PNG 1x1" {
				return "body " + r.Response.Body + ", want PNG 1x1 (the wasm encoder and decoder ran)"
			}
			return ""
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := map[string]any{"code": tt.code, "dependencies": realDeps}
			if tt.request != nil {
				body["request"] = tt.request
			}
			status, data := postTo(t, url, "/execute", body)
			var res execution.Result
			if status != http.StatusOK || json.Unmarshal(data, &res) != nil {
				t.Fatalf("POST /execute = %d %s", status, data)
			}
			if !res.Success {
				t.Fatalf("result = %s, want success", data)
			}
			if msg := tt.want(&res); msg != "" {
				t.Error(msg)
			}
			// zod's range takes 3.23.8 from the fixtures, a later 3.x from a real registry.
			if !strings.HasPrefix(res.Dependencies["zod"], "3.") || res.Dependencies["hono"] != "4.6.3" || len(res.Dependencies) != len(realDeps) {
				t.Errorf("dependencies = %v, want each asked for with its version (zod 3.x)", res.Dependencies)
			}
		})
	}
}

// TestDependenciesFromPackageJSON: a package.json among the modules gives
// the dependencies; a module in a directory imports them too; a request
// whose dependencies disagree with its package.json is refused.
func TestDependenciesFromPackageJSON(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "greet", "1.2.0", map[string]any{"type": "module", "main": "index.js"},
		map[string]string{"index.js": `export default (who) => "hello " + who; export const shout = (s) => s.toUpperCase();`})
	url := depsGateway(t, reg)
	modules := map[string]any{
		"package.json": `{"name": "app", "dependencies": {"greet": "^1.0.0"}, "scripts": {"postinstall": "exit 1"}}`,
		"main.js":      `import greet from "greet"; import { loud } from "./lib/loud.js"; export default { fetch() { return new Response(loud(greet("you"))); } };`,
		"lib/loud.js":  `import { shout } from "greet"; export const loud = (s) => shout(s);`,
	}
	status, data := postTo(t, url, "/execute", map[string]any{"modules": modules, "mainModule": "main.js"})
	var res execution.Result
	if status != http.StatusOK || json.Unmarshal(data, &res) != nil || res.Response == nil || res.Response.Body != "HELLO YOU" {
		t.Fatalf("POST /execute = %d %s, want HELLO YOU", status, data)
	}
	if res.Dependencies["greet"] != "1.2.0" {
		t.Errorf("dependencies = %v, want greet 1.2.0", res.Dependencies)
	}
	status, data = postTo(t, url, "/execute", map[string]any{"modules": modules, "mainModule": "main.js", "dependencies": map[string]string{"greet": "1.2.0"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"field":"dependencies","code":"conflict"`) {
		t.Errorf("disagreeing dependencies = %d %s, want 422 conflict", status, data)
	}
}

// TestDependencyProblems: each way dependencies cannot be had is its
// problem, naming the package; meanwhile an execution without
// dependencies runs as fast as ever.
func TestDependencyProblems(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	reg.Add(t, "ok", "1.0.0", nil, map[string]string{"index.js": "export const ok = 1"})
	reg.Add(t, "evil-thing", "1.0.0", nil, map[string]string{"index.js": ""})
	reg.Add(t, "broken", "1.0.0", map[string]any{"main": "index.js"}, map[string]string{"index.js": "export const = ;"})
	reg.Add(t, "hangs", "1.0.0", nil, map[string]string{"index.js": ""})
	reg.Intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/hangs" {
			<-release
			return true
		}
		return false
	}
	url := depsGateway(t, reg, func(o *packages.Options) { o.Deny = []string{"evil-*"} })
	// The registry that never answers is another gateway's, with a short
	// timeout: npm itself takes seconds to start on a busy machine.
	hangURL := depsGateway(t, reg, func(o *packages.Options) { o.ResolveTimeout = 8 * time.Second })
	many := map[string]string{}
	for i := range 10000 {
		many[fmt.Sprintf("dep-%d", i)] = "1.0.0"
	}
	manyJSON, _ := json.Marshal(map[string]any{"dependencies": many})
	code := `export default { fetch() { return new Response("ran"); } };`
	hung := make(chan string, 1)
	go func() {
		status, data := postTo(t, hangURL, "/execute", map[string]any{"code": code, "dependencies": map[string]string{"hangs": "1.0.0"}})
		hung <- fmt.Sprintf("%d %s", status, data)
	}()
	for _, tt := range []struct {
		name   string
		body   map[string]any
		status int
		want   []string
	}{
		{"unknown package", map[string]any{"code": code, "dependencies": map[string]string{"no-such": "1.0.0"}}, 422, []string{`"code":"dependency_not_found"`, "no-such"}},
		{"unknown version", map[string]any{"code": code, "dependencies": map[string]string{"ok": "^2.0.0"}}, 422, []string{`"code":"dependency_not_found"`, "ok"}},
		{"denied", map[string]any{"code": code, "dependencies": map[string]string{"evil-thing": "1.0.0"}}, 422, []string{`"code":"dependency_denied"`, "evil-thing"}},
		{"package.json of 10,000", map[string]any{"modules": map[string]string{"main.js": code, "package.json": string(manyJSON)}}, 422, []string{`"code":"dependency_too_large"`, "10000 dependencies"}},
		{"not a range", map[string]any{"code": code, "dependencies": map[string]string{"ok": "git+ssh://x/y"}}, 422, []string{`"field":"dependencies.ok"`}},
		{"does not bundle", map[string]any{"code": `import { x } from "broken"; ` + code, "dependencies": map[string]string{"broken": "1.0.0"}}, 200, []string{`"code":"invalid_module"`, "broken"}},
	} {
		status, data := postTo(t, url, "/execute", tt.body)
		if status != tt.status {
			t.Errorf("%s: POST /execute = %d %s, want %d", tt.name, status, data, tt.status)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s: answer %s does not say %s", tt.name, data, w)
			}
		}
	}
	start := time.Now()
	if status, data := postTo(t, url, "/execute", map[string]any{"code": code}); status != 200 || !strings.Contains(string(data), `"body":"ran"`) {
		t.Errorf("an execution beside a stalled resolution = %d %s", status, data)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("an execution beside a stalled resolution took %v", d)
	}
	got := <-hung
	if !strings.HasPrefix(got, "503 Retry-After:") || !strings.Contains(got, `"dependency_unavailable"`) || !strings.Contains(got, "hangs") {
		t.Errorf("a registry that never answers = %s, want 503 dependency_unavailable with Retry-After, naming hangs", got)
	}
}

// TestInstallEvents: a streamed execution with dependencies sees what is
// resolved, then what it resolved to, before its first log.
func TestInstallEvents(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "solo", "1.0.0", map[string]any{"type": "module", "main": "index.js"}, map[string]string{"index.js": "export const solo = 'one';"})
	url := depsGateway(t, reg)
	body, _ := json.Marshal(map[string]any{"code": `import { solo } from "solo"; export default { fetch() { console.log(solo); return new Response("ok"); } };`,
		"dependencies": map[string]string{"solo": "^1"}})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/execute", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var types []string
	var installs []execution.Install
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev execution.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %s: %v", sc.Bytes(), err)
		}
		types = append(types, ev.Type)
		if ev.Install != nil {
			installs = append(installs, *ev.Install)
		}
	}
	if strings.Join(types, ",") != "install,install,start,log,result" {
		t.Errorf("events = %v, want install, install, start, log, result", types)
	}
	if len(installs) != 2 || installs[0].Phase != "resolving" || installs[0].Packages["solo"] != "^1" ||
		installs[1].Phase != "done" || installs[1].Packages["solo"] != "1.0.0" {
		t.Errorf("install events = %+v, want resolving solo ^1, then done solo 1.0.0", installs)
	}
}
