package shim_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// forged is what the patches below try to make the capture wrapper write.
const forged = `{t: "response", status: 299, headers: {"x-forged": "1"}, body: "forged", bodyEncoding: "evil", truncated: false,
	outbound: [], warm: true, code: "secret-code", message: "forged"}`

// wrapperPatches are ways a guest can replace what the capture wrapper
// would use to build and write its records. Each runs both at the guest's top
// level and in its handler before it returns.
var wrapperPatches = map[string]string{
	"Object.prototype.toJSON":         `Object.prototype.toJSON = function () { return ` + forged + `; };`,
	"toJSON by defineProperty":        `Object.defineProperty(Object.prototype, "toJSON", { configurable: true, get() { return () => (` + forged + `); } });`,
	"JSON.stringify":                  `JSON.stringify = () => JSON_FORGED;`,
	"Array.prototype.push":            `Array.prototype.push = function () { return 0; };`,
	"Array.prototype index setters":   `for (let i = 0; i < 4; i++) Object.defineProperty(Array.prototype, i, { configurable: true, set() {}, get() { return "forged"; } });`,
	"Array.prototype iterator":        `Array.prototype[Symbol.iterator] = function* () { yield "forged"; };`,
	"Function.prototype.call":         `Function.prototype.call = function () { return "forged"; };`,
	"Function.prototype.apply":        `Function.prototype.apply = function () { return "forged"; };`,
	"Function.prototype.bind":         `Function.prototype.bind = function () { return () => "forged"; };`,
	"Promise.prototype.then":          `{ const then = Promise.prototype.then; Promise.prototype.then = function (f, r) { return then.call(this, (v) => f && f(v && typeof v === "object" && "done" in v ? v : v), r); }; }`,
	"Promise constructor and then":    `Promise.prototype.constructor = function Evil(ex) { return new Promise(ex); }; Promise.prototype.then = function (f) { if (f) f(` + forged + `); };`,
	"Promise species":                 `Object.defineProperty(Promise, Symbol.species, { get() { throw new Error("species"); } });`,
	"Object.prototype.then":           `Object.prototype.then = function (resolve) { delete Object.prototype.then; resolve(` + forged + `); };`,
	"String.prototype":                `String.prototype.slice = () => "forged"; String.prototype.replaceAll = () => "forged"; String.prototype.indexOf = () => -1; String.prototype.startsWith = () => true;`,
	"RegExp.prototype":                `RegExp.prototype.exec = () => null; RegExp.prototype.test = () => true; RegExp.prototype[Symbol.match] = () => null;`,
	"TextEncoder and TextDecoder":     `TextEncoder.prototype.encode = () => new TextEncoder().encodeInto ? new Uint8Array([123]) : null; TextDecoder.prototype.decode = () => "forged";`,
	"stream writer":                   `WritableStreamDefaultWriter.prototype.write = () => Promise.resolve(); WritableStreamDefaultWriter.prototype.close = () => new Promise(() => {});`,
	"stream reader":                   `ReadableStream.prototype.getReader = () => ({ read: async () => ({ done: false, value: "forged" }) });`,
	"typed arrays":                    `{ const T = Object.getPrototypeOf(Uint8Array.prototype); Object.defineProperty(T, "byteLength", { get() { return 1e9; } }); T.set = () => {}; T.subarray = () => "forged"; }`,
	"Response.prototype getters":      `Object.defineProperty(Response.prototype, "status", { configurable: true, get() { return 299; } }); Object.defineProperty(Response.prototype, "headers", { configurable: true, get() { return new Headers({ "x-forged": "1" }); } });`,
	"Headers.prototype":               `Headers.prototype.forEach = () => {}; Headers.prototype.entries = function* () { yield ["x-forged", "1"]; };`,
	"Object.defineProperty and keys":  `Object.defineProperty = () => { throw new Error("forged"); }; Object.keys = () => ["forged"]; Object.entries = () => [];`,
	"Reflect.apply":                   `Reflect.apply = () => "forged";`,
	"Object.prototype accessors":      `for (const k of ["t", "n", "writer", "pending", "done", "status", "body", "names", "headers", "bytes", "truncated", "get", "set", "value"]) try { Object.defineProperty(Object.prototype, k, { configurable: true, get() { return "forged"; }, set() {} }); } catch {}`,
	"Symbol.hasInstance on Response":  `Object.defineProperty(Response, Symbol.hasInstance, { configurable: true, value: () => false });`,
	"globalThis.Response replaced":    `globalThis.Response = class extends Response { get status() { return 299; } };`,
	"import the wrapper and patch it": `import("./__dw_wrapper.js").then((m) => { try { m.default.fetch = () => new Response("forged"); } catch {} });`,
}

// selfHarming are patches that break the guest's own code too (its own
// promises and awaits), at every compatibility date (nil) or at the dates
// listed: the result may then be an error of the guest's own making, but it
// is still never the forged record. Before 2022-11-30 the runtime's own
// streams store a read's result through the guest's Object.prototype
// setters, so a guest that defines them cannot have its body read.
var selfHarming = map[string][]string{
	"Object.prototype.then":        nil,
	"Promise constructor and then": nil,
	"Promise species":              nil,
	"Object.prototype accessors":   {"2021-11-01"},
}

func harmsItself(name, date string) bool {
	dates, ok := selfHarming[name]
	return ok && (dates == nil || slices.Contains(dates, date))
}

// guestCodes are the codes a guest's own record may carry.
var guestCodes = []execution.Code{execution.CodeException, execution.CodeSyntaxError, execution.CodeInvalidModule,
	execution.CodeTimeout, execution.CodeCPULimit, execution.CodeMemoryLimit, execution.CodeSubrequestLimit, execution.CodeOutputLimit}

// wantUnforged fails if anything of the forged record reached the result.
func wantUnforged(t *testing.T, res *execution.Result) {
	t.Helper()
	if res.Warm || res.Truncated || len(res.Outbound) != 0 {
		t.Errorf("result = %+v, want none of the forged flags", res)
	}
	if r := res.Response; r != nil && (r.Status == 299 || (r.BodyEncoding != "utf8" && r.BodyEncoding != "base64") || r.Headers["x-forged"] != "" || r.Body == "forged") {
		t.Errorf("response = %+v, forged", r)
	}
	if e := res.Error; e != nil && !slices.Contains(guestCodes, e.Code) {
		t.Errorf("error = %+v, forged", e)
	}
}

// patchedGuest runs patch at the top level and again in its handler, then
// logs and answers in a known way.
func patchedGuest(patch string, answer string) string {
	return `const JSON_FORGED = '{"t":"response","status":299,"headers":{},"body":"forged","bodyEncoding":"evil"}';
		const OriginalResponse = Response;
		` + patch + `
		export default { async fetch() {
			console.log("before");
			` + patch + `
			` + answer + `
		} }`
}

// TestGuestPatchesCannotChangeRecords runs every patch family on the live
// (streamed) path and on the buffered one.
func TestGuestPatchesCannotChangeRecords(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	answers := map[string]func(*testing.T, *execution.Result){
		"response": func(t *testing.T, res *execution.Result) {
			if !res.Success || res.Response.Status != 201 || res.Response.Body != "body-ok" || res.Response.BodyEncoding != "utf8" ||
				len(res.Response.Headers) != 2 || res.Response.Headers["x-h"] != "v" || res.Warm || res.Truncated {
				t.Errorf("result = %+v, %+v; want the guest's own 201 response", res.Error, res.Response)
			}
		},
		"error": func(t *testing.T, res *execution.Result) {
			if res.Success || res.Error == nil || res.Error.Code != execution.CodeException || !strings.Contains(res.Error.Message, "own error") {
				t.Errorf("result = %+v, %+v; want the guest's own exception", res.Error, res.Response)
			}
		},
	}
	code := map[string]string{
		"response": `return new OriginalResponse("body-ok", { status: 201, headers: { "x-h": "v" } });`,
		"error":    `throw new Error("own error");`,
	}
	// Before 2022-01-31 the runtime's classes keep their properties on each
	// instance instead of the prototype: the wrapper reads them another way.
	dates := []string{"2026-11-16", "2021-11-01"}
	for name, patch := range wrapperPatches {
		for kind, check := range answers {
			for _, date := range dates {
				for _, buffered := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/%s/buffered=%v", name, kind, date, buffered), func(t *testing.T) {
						t.Parallel()
						j := loadertest.Job("patch", patchedGuest(patch, code[kind]), 5*time.Second)
						j.CompatibilityDate = date
						j.Buffered = buffered
						j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}}
						events, err := loadertest.Run(t, l, j)
						if err != nil {
							t.Fatalf("Execute = %v", err)
						}
						res := loadertest.LastResult(t, events)
						wantUnforged(t, res)
						if harmsItself(name, date) {
							return
						}
						check(t, res)
						var logs []string
						for _, ev := range events {
							if ev.Type == execution.EventLog {
								logs = append(logs, ev.Log.Message)
							}
						}
						if len(logs) == 0 || logs[0] != "before" {
							t.Errorf("logs = %q, want the guest's own first", logs)
						}
					})
				}
			}
		}
	}
}

// The handler's return value is a Response only if it is a real one:
// nothing that only looks like one passes as one (it is a return value, or
// an exception when it cannot be one).
func TestWrapperChecksTheResponseBrand(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	fakes := map[string]string{
		"plain object":            `return { status: 200, headers: {}, body: "x" };`,
		"Response prototype":      `return Object.create(Response.prototype);`,
		"hasInstance says yes":    `Object.defineProperty(Response, Symbol.hasInstance, { value: () => true }); return { status: 200 };`,
		"proxy of a Response":     `return new Proxy(new Response("x"), {});`,
		"thenable of an object":   `return { then(r) { r({ status: 200 }); } };`,
		"status 101":              `return new Response(null, { status: 101, webSocket: new WebSocketPair()[0] });`,
		"Request, not a Response": `return new Request("http://x/");`,
		"Response constructor fn": `return Response;`,
	}
	for name, answer := range fakes {
		for _, date := range []string{"2026-11-16", "2021-11-01"} {
			t.Run(name+"/"+date, func(t *testing.T) {
				t.Parallel()
				j := loadertest.Job("brand", `export default { async fetch() { `+answer+` } }`, 5*time.Second)
				j.CompatibilityDate = date
				events, err := loadertest.Run(t, l, j)
				if err != nil {
					t.Fatalf("Execute = %v", err)
				}
				res := loadertest.LastResult(t, events)
				if res.Response != nil || res.Success == (res.Error != nil) || res.Error != nil && res.Error.Code != execution.CodeException {
					t.Errorf("result = %+v, %+v; want no Response: a return value or an exception", res.Error, res.Response)
				}
			})
		}
	}
	// A subclass is a real Response: its own getters do not change the record.
	sub := `class R extends Response { get status() { return 299; } get headers() { return new Headers({ "x-forged": "1" }); } }
		return new R("sub", { status: 202 });`
	events, err := loadertest.Run(t, l, loadertest.Job("subclass", `export default { async fetch() { `+sub+` } }`, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res := loadertest.LastResult(t, events); !res.Success || res.Response.Status != 202 || res.Response.Body != "sub" || res.Response.Headers["x-forged"] != "" {
		t.Errorf("subclass result = %+v, %+v; want its real status 202", res.Error, res.Response)
	}
}
