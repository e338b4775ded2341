package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestAttackMaxCalls: max_calls (3 for "few") bounds the calls of one
// execution that reach the service, however the guest makes them: one
// after another, all at once, through relative and absolute URLs, from
// ctx.waitUntil after the response, from a timer the execution leaves
// behind, or in a reused isolate's next execution.
func TestAttackMaxCalls(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	abs := f.service.srv.URL + "/api/"
	for i, tt := range []struct{ name, body string }{
		{"one after another", `for (let i = 0; i < 8; i++) { try { await env.few.fetch(P + i); } catch {} }`},
		{"all at once", `await Promise.allSettled(Array.from({ length: 20 }, (_, i) => env.few.fetch(P + i)));`},
		{"relative and absolute", `await Promise.allSettled(Array.from({ length: 10 }, (_, i) => env.few.fetch((i % 2 ? "` + abs + `" : "") + P + i, { method: i % 3 ? "GET" : "POST" })));`},
		{"waitUntil after the response", `ctx.waitUntil(Promise.allSettled(Array.from({ length: 10 }, (_, i) => env.few.fetch(P + i))));`},
		{"a timer left behind", `for (let i = 0; i < 10; i++) setTimeout(() => env.few.fetch(P + i).catch(() => {}), 50 + i);`},
	} {
		for _, isolate := range []string{"fresh", "reuse"} {
			t.Run(tt.name+" "+isolate, func(t *testing.T) {
				prefix := fmt.Sprintf("calls-%d-%s-", i, isolate)
				code := `export default { async fetch(req, env, ctx) { const P = "` + prefix + `"; ` + tt.body + ` return new Response("ok"); } }`
				for range 2 { // the second time warm, with isolate reuse
					f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"few"}, "isolate": isolate})
				}
				f.run(t, f.alice, map[string]any{"code": guest(""), "isolate": isolate}) // gives timers time to fire
				n := 0
				for _, r := range f.service.requests() {
					if strings.HasPrefix(r.URL.Path, "/api/"+prefix) {
						n++
					}
				}
				if n > 6 {
					t.Errorf("%d calls reached the service in two executions, want at most 2 × max_calls = 6", n)
				}
			})
		}
	}
}
