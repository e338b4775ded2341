package api_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api"
)

// TestAttackCapabilityReasonPhrase: a capability's answer had its headers
// and body masked, but its status text (the reason phrase of the status
// line) reached the guest as the service wrote it, credential and all.
// The guest reverses what it got (which no output masking would catch).
func TestAttackCapabilityReasonPhrase(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	for _, reason := range []string{"AUTH", "OK AUTH OK", "TOKEN", "Bad TOKEN;TOKEN"} {
		t.Run(reason, func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  const r = await env.reader.fetch("reason?as=" + encodeURIComponent(%q));
  return new Response(r.status + " " + [...r.statusText].reverse().join(""));
} }`, reason)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
			wantSuccess(t, res)
			noCredentials(t, "the status text", res.Response.Body)
			got := reverse(strings.TrimPrefix(res.Response.Body, "200 "))
			want := strings.NewReplacer("AUTH", "[REDACTED]", "TOKEN", "[REDACTED]").Replace(reason)
			if got != want {
				t.Errorf("status text = %q, want %q", got, want)
			}
		})
	}
}

// TestAttackCapabilityLongAnswer: masking a capability's answer costs the
// shim CPU for each byte, taken from every neighbour, and nothing bound
// how many bytes one call could make it mask (four guests streaming 1.5 GB
// each raised neighbours' latency 10 ms -> 50-200 ms). A call's answer is
// cut past max_answer_bytes now: with a Content-Length over it the call
// fails at once; without one, or gzip-encoded (a few KB that decode to
// more), the guest's read fails there.
func TestAttackCapabilityLongAnswer(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	f := startAttackGateway(t, func(o *api.Options) {
		c := o.Capabilities["reader"]
		c.MaxAnswerBytes = limit
		o.Capabilities["reader"] = c
	})
	for _, tt := range []struct {
		as    string
		bytes int
		cut   bool
	}{
		{"length", 2 * limit, true}, {"chunked", 2 * limit, true}, {"gzip", 8 * limit, true},
		{"chunked", limit + 1, true}, {"chunked", limit, false}, {"length", limit, false},
	} {
		t.Run(fmt.Sprintf("%s %d", tt.as, tt.bytes), func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  let n = 0;
  try {
    const r = await env.reader.fetch("long?as=%s&bytes=%d");
    const reader = r.body.getReader();
    for (;;) { const { done, value } = await reader.read(); if (done) break; n += value.length; }
    return new Response(n + " whole");
  } catch (e) { return new Response(n + " " + e.message); }
} }`, tt.as, tt.bytes)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
			wantSuccess(t, res)
			n, message, _ := strings.Cut(res.Response.Body, " ")
			got, _ := strconv.Atoi(n)
			if !tt.cut {
				if message != "whole" || got != tt.bytes {
					t.Errorf("guest read %q, want all %d bytes", res.Response.Body, tt.bytes)
				}
				return
			}
			if got > limit || !strings.Contains(message, "cut") || !strings.Contains(message, strconv.Itoa(limit)) {
				t.Errorf("guest read %q, want at most %d bytes and an error saying the answer was cut", res.Response.Body, limit)
			}
		})
	}
}
