package loader_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// backends starts each backend the shared suite runs against: the local
// pool, and the cloudflare backend talking over HTTP with signed calls to
// the same shim served by a separately started workerd (standing in for the
// Worker deployed on Cloudflare).
func backends(t *testing.T) map[string]execution.Backend {
	t.Helper()
	local := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { local.Close() })
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { deployed.Close() })
	shimURL, secret := deployed.ShimURL()
	cf, err := cloudflare.New(cloudflare.Config{URL: shimURL, Secret: secret}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cf.Close() })
	if err := cf.Ready(t.Context()); err != nil {
		t.Fatalf("cloudflare backend not ready: %v", err)
	}
	return map[string]execution.Backend{"local": local, "cloudflare": cf}
}

// TestBackendSuite runs the mission cases of an execution against every
// backend: they must behave the same.
func TestBackendSuite(t *testing.T) {
	t.Parallel()
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runSuite(t, b)
		})
	}
}

// runSuite runs every case of the suite on b, in parallel.
func runSuite(t *testing.T, b execution.Backend) {
	for _, tc := range suiteCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := loadertest.Job(tc.name, tc.code, 5*time.Second)
			if tc.prepare != nil {
				tc.prepare(j)
			}
			events, err := loadertest.Run(t, b, j)
			tc.check(t, events, err)
		})
	}
}

// addWasm is a WebAssembly module, assembled by hand, exporting
// add(i32, i32) i32: the magic and version, then the type, function,
// export and code sections.
var addWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type 0: (i32, i32) -> i32
	0x03, 0x02, 0x01, 0x00, // function 0 has type 0
	0x07, 0x07, 0x01, 0x03, 'a', 'd', 'd', 0x00, 0x00, // export "add" = function 0
	0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b, // local.get 0, local.get 1, i32.add
}

type suiteCase struct {
	name    string
	code    string
	prepare func(*execution.Job)
	check   func(t *testing.T, events []execution.Event, err error)
}

func wantResult(check func(t *testing.T, res *execution.Result, logs []*execution.Log)) func(*testing.T, []execution.Event, error) {
	return func(t *testing.T, events []execution.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("Execute = %v", err)
		}
		if events[0].Type != execution.EventStart {
			t.Errorf("first event = %s, want start", events[0].Type)
		}
		res := loadertest.LastResult(t, events)
		var logs []*execution.Log
		for _, ev := range events {
			if ev.Type == execution.EventLog {
				logs = append(logs, ev.Log)
			}
		}
		check(t, res, logs)
	}
}

func wantCode(code execution.Code, contains string) func(*testing.T, []execution.Event, error) {
	return wantResult(func(t *testing.T, res *execution.Result, _ []*execution.Log) {
		if res.Success || res.Error == nil || res.Error.Code != code || !strings.Contains(res.Error.Message+res.Error.Stack, contains) {
			t.Errorf("result = %+v, want %s mentioning %q", res.Error, code, contains)
		}
	})
}

var suiteCases = []suiteCase{
	{"hello", `export default { fetch() { console.log("Isolated worker running!"); return new Response("Done"); } }`, nil,
		wantResult(func(t *testing.T, res *execution.Result, logs []*execution.Log) {
			if !res.Success || res.Response.Body != "Done" || len(logs) != 1 || logs[0].Message != "Isolated worker running!" {
				t.Errorf("result %+v, logs %v", res, logs)
			}
		})},
	{"levels and top level", `console.log("top"); export default { async fetch() { console.warn("w %d", 1); await null; console.error({a: 1}); return new Response("ok"); } }`, nil,
		wantResult(func(t *testing.T, res *execution.Result, logs []*execution.Log) {
			var got []string
			for _, l := range logs {
				got = append(got, l.Stream+":"+l.Message)
			}
			if strings.Join(got, "|") != "stdout:top|stderr:w 1|stderr:{ a: 1 }" {
				t.Errorf("logs = %v", got)
			}
		})},
	{"env and request", `export default { async fetch(r, env) { return new Response(r.method + " " + await r.text() + " " + env.N); } }`,
		func(j *execution.Job) {
			j.Env = map[string]any{"N": 7}
			j.Request = execution.GuestRequest{Method: "POST", URL: "http://localhost/x", Headers: map[string]string{}, Body: "hi", BodyEncoding: "utf8"}
		},
		wantResult(func(t *testing.T, res *execution.Result, _ []*execution.Log) {
			if res.Response.Body != "POST hi 7" {
				t.Errorf("body = %q", res.Response.Body)
			}
		})},
	{"binary body", `export default { fetch() { return new Response(new Uint8Array([0, 255])); } }`, nil,
		wantResult(func(t *testing.T, res *execution.Result, _ []*execution.Log) {
			if res.Response.BodyEncoding != "base64" || res.Response.Body != "AP8=" {
				t.Errorf("response = %+v", res.Response)
			}
		})},
	{"exception", `export default { fetch() { throw new TypeError("bad"); } }`, nil, wantCode(execution.CodeException, "TypeError: bad")},
	{"syntax error", `export default { fetch( { } }`, nil, wantCode(execution.CodeSyntaxError, "main.js:1")},
	{"invalid module", `export const x = 1;`, nil, wantCode(execution.CodeInvalidModule, "no default export")},
	{"timeout", `export default { async fetch() { await new Promise((r) => setTimeout(r, 60000)); } }`,
		func(j *execution.Job) { j.Timeout = 300 * time.Millisecond }, wantCode(execution.CodeTimeout, "timeout")},
	{"hang", `export default { async fetch() { await new Promise(() => {}); } }`, nil, wantCode(execution.CodeTimeout, "never complete")},
	{"outbound denied", `export default { async fetch() { try { await fetch("http://127.0.0.1:1/"); return new Response("reached"); } catch (e) { return new Response(e.message); } } }`,
		func(j *execution.Job) { j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}} },
		wantResult(func(t *testing.T, res *execution.Result, _ []*execution.Log) {
			if !strings.Contains(res.Response.Body, "denied") || len(res.Outbound) != 1 || !res.Outbound[0].Denied {
				t.Errorf("body %q, outbound %+v; want the request denied and recorded", res.Response.Body, res.Outbound)
			}
		})},
	{"capability host denied", `export default { async fetch() {
		const out = [];
		for (const u of ["https://Internal-API.example.com./v1", "https://internal-api.example.com:8443/", "https://93.184.216.7/", "https://[2606:4700::0007]/"]) {
			try { await fetch(u); out.push("reached"); } catch (e) { out.push(e.message); }
		}
		return new Response(out.join("\n")); } }`,
		func(j *execution.Job) {
			j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}, DenyHosts: []string{"2606:4700::7", "93.184.216.7", "internal-api.example.com"}}
		},
		wantResult(func(t *testing.T, res *execution.Result, _ []*execution.Log) {
			lines := strings.Split(res.Response.Body, "\n")
			for _, l := range lines {
				if !strings.Contains(l, "is a capability's host") {
					t.Errorf("a plain fetch of a capability's host: %q, want it denied as a capability's host", l)
				}
			}
			if len(lines) != 4 || len(res.Outbound) != 4 || !res.Outbound[0].Denied || !res.Outbound[3].Denied {
				t.Errorf("body %q, outbound %+v; want four requests denied and recorded", res.Response.Body, res.Outbound)
			}
		})},
	{"binary modules", `import add from "./lib/add.wasm"; import table from "./table.bin";
		export default { async fetch() {
			const { exports } = await WebAssembly.instantiate(add);
			return new Response(exports.add(2, 40) + " " + [...new Uint8Array(table)].join(","));
		} }`,
		func(j *execution.Job) {
			j.Binary = map[string]execution.BinaryModule{
				"lib/add.wasm": {Kind: execution.ModuleWasm, Bytes: addWasm},
				"table.bin":    {Kind: execution.ModuleData, Bytes: []byte{0, 7, 255}},
			}
		},
		wantResult(func(t *testing.T, res *execution.Result, _ []*execution.Log) {
			if !res.Success || res.Response.Body != "42 0,7,255" {
				t.Errorf("result %+v (error %+v), want the wasm add(2, 40) and the data bytes: 42 0,7,255", res.Response, res.Error)
			}
		})},
	{"rejected flag", `export default { fetch() { return new Response("x"); } }`,
		func(j *execution.Job) { j.CompatibilityFlags = []string{"no_such_flag_x"} },
		func(t *testing.T, events []execution.Event, err error) {
			var rejected *execution.RejectedError
			if !errors.As(err, &rejected) || rejected.Field != "compatibilityFlags" || len(events) != 0 {
				t.Errorf("Execute = %v with %d events, want a RejectedError for compatibilityFlags and no events", err, len(events))
			}
		}},
}

func TestCloudflareSecretMismatch(t *testing.T) {
	t.Parallel()
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer deployed.Close()
	shimURL, _ := deployed.ShimURL()
	cf, err := cloudflare.New(cloudflare.Config{URL: shimURL, Secret: strings.Repeat("w", 64)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	err = cf.Ready(t.Context())
	if !errors.Is(err, execution.ErrUnavailable) || !errors.Is(err, shim.ErrSecretMismatch) || !strings.Contains(err.Error(), "shim_secret") {
		t.Errorf("Ready = %v, want unavailable because the secrets differ, naming cloudflare.shim_secret", err)
	}
	_, err = loadertest.Run(t, cf, loadertest.Job("x", loadertest.Hello, 5*time.Second))
	if !errors.Is(err, execution.ErrUnavailable) || !errors.Is(err, shim.ErrSecretMismatch) {
		t.Errorf("Execute = %v, want unavailable because the secrets differ", err)
	}
}

// TestCloudflareBreaker: after three executions fail to reach the shim, the
// breaker opens: the next is refused without contacting the shim (the
// server counts no call). After the cooldown one trial goes through; its
// success closes the breaker and the backend is ready again.
func TestCloudflareBreaker(t *testing.T) {
	t.Parallel()
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer deployed.Close()
	shimURL, secret := deployed.ShimURL()
	target, _ := url.Parse(shimURL)
	proxy := httputil.NewSingleHostReverseProxy(target)

	// The shim's address: while down it drops every connection unanswered;
	// once up it passes calls on to the shim. It counts the calls that are
	// not the background check.
	var up atomic.Bool
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/verify" {
			calls.Add(1)
		}
		if up.Load() {
			proxy.ServeHTTP(w, r)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	// The cooldown is long enough that the refusal below comes before it
	// ends on a loaded machine; the check runs only at New.
	const cooldown = 2 * time.Second
	cf, err := cloudflare.New(cloudflare.Config{
		URL: srv.URL, Secret: secret,
		BreakerFailures: 3, BreakerCooldown: cooldown, VerifyInterval: time.Hour,
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if err := cf.Ready(t.Context()); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Ready with the shim down = %v, want ErrUnavailable", err)
	}
	for i := range 3 {
		if _, err := loadertest.Run(t, cf, loadertest.Job(fmt.Sprint("down", i), loadertest.Hello, 5*time.Second)); !errors.Is(err, execution.ErrUnavailable) {
			t.Fatalf("execution %d with the shim down = %v, want ErrUnavailable", i, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("the shim got %d calls for 3 failed executions, want 3", n)
	}
	_, err = loadertest.Run(t, cf, loadertest.Job("open", loadertest.Hello, 5*time.Second))
	if !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("with the breaker open: %v, want ErrUnavailable", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("with the breaker open the shim got call %d, want none: a refusal without contacting it", n)
	}
	if err := cf.Ready(t.Context()); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Ready with the breaker open = %v, want ErrUnavailable", err)
	}

	// The shim comes back. The breaker reads the wall clock and signals
	// nothing when its cooldown ends: try until it lets the trial through;
	// each try before is refused without reaching the shim.
	up.Store(true)
	var events []execution.Event
	if !testwait.Until(30*time.Second, func() bool {
		events, err = loadertest.Run(t, cf, loadertest.Job("back", loadertest.Hello, 5*time.Second))
		return !errors.Is(err, execution.ErrUnavailable)
	}) {
		t.Fatalf("the breaker refused executions for 30s after its %v cooldown: %v", cooldown, err)
	}
	if err != nil || !loadertest.LastResult(t, events).Success {
		t.Fatalf("after recovery: %v, want success", err)
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("the shim got %d calls after the cooldown, want one more (the trial)", n)
	}
	if err := cf.Ready(t.Context()); err != nil {
		t.Errorf("Ready after the trial succeeded = %v, want nil", err)
	}
}

// TestCloudflarePathPrefix: the shim served under a
// path prefix (cloudflare.url https://host/gw) takes the gateway's signed
// /gw/verify and /gw/run: both sides sign and check the whole path.
func TestCloudflarePathPrefix(t *testing.T) {
	t.Parallel()
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer deployed.Close()
	shimURL, secret := deployed.ShimURL()
	cf, err := cloudflare.New(cloudflare.Config{URL: shimURL + "/gw", Secret: secret, VerifyInterval: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if err := cf.Ready(t.Context()); err != nil {
		t.Fatalf("Ready() under /gw = %v, want nil", err)
	}
	events, err := loadertest.Run(t, cf, loadertest.Job("prefix", loadertest.Hello, 5*time.Second))
	if err != nil || !loadertest.LastResult(t, events).Success {
		t.Errorf("Execute() under /gw = %v, want success", err)
	}
}
