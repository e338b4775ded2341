package api_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dynamic-workers/gateway/execution"
)

func TestSecretsAreMasked(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"code": `export default { fetch(r, env) {
  console.log("token is", env.API_TOKEN, "and", env.OTHER);
  throw new Error("failed with " + env.API_TOKEN);
} }`,
		"secrets": map[string]string{"API_TOKEN": "sk_live_abc123", "OTHER": "sk_live_abc123_longer"},
	})
	wantError(t, res, execution.CodeException, "[REDACTED]")
	if res.Stdout != "token is [REDACTED] and [REDACTED]" {
		t.Errorf("stdout = %q", res.Stdout)
	}
	if strings.Contains(res.Error.Message+res.Error.Stack, "sk_live") {
		t.Errorf("error leaks the secret: %+v", res.Error)
	}
	if strings.Contains(shared.logs.String(), "sk_live") {
		t.Errorf("the gateway's log contains a secret")
	}
}

func TestOversizedLogLineIsCut(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"code": `export default { fetch() {
		console.log("é".repeat(5 << 20));
		console.log("after");
		return new Response("ok");
	} }`})
	wantSuccess(t, res)
	if len(res.Logs) != 2 {
		t.Fatalf("got %d logs, want 2", len(res.Logs))
	}
	first := res.Logs[0]
	if !first.Truncated || len(first.Message) > testLimits.MaxLogLineBytes || len(first.Message) < testLimits.MaxLogLineBytes-1 || !utf8.ValidString(first.Message) {
		t.Errorf("first log: truncated = %v, %d bytes, valid UTF-8 %v; want truncated to %d bytes", first.Truncated, len(first.Message), utf8.ValidString(first.Message), testLimits.MaxLogLineBytes)
	}
	if res.Logs[1].Message != "after" || res.Logs[1].Truncated || !res.Truncated {
		t.Errorf("second log = %+v, result truncated = %v; want intact, and the result marked truncated", res.Logs[1], res.Truncated)
	}
}

// TestSecretsNeverAppear prints a secret every way the issue lists and
// checks that its value appears in no output of either rendering.
func TestSecretsNeverAppear(t *testing.T) {
	t.Parallel()
	const secret = "tok_9f8e7d6c5b4a"
	code := `export default { async fetch(request, env) {
		console.log(env.TOKEN);
		console.info({ nested: { token: env.TOKEN } }, [env.TOKEN]);
		console.warn("%s and %o", env.TOKEN, { t: env.TOKEN });
		{
			const bytes = new TextEncoder().encode("bin\u0000" + env.TOKEN + "\u00ff");
			const raw = new Uint8Array([...bytes, 0xff]);
			if (new URL(request.url).pathname === "/binary") return new Response(raw, { headers: { "x-token": env.TOKEN } });
		}
		if (new URL(request.url).pathname === "/throw") throw new Error("failed with " + env.TOKEN);
		return new Response("body " + env.TOKEN, { headers: { "x-token": "Bearer " + env.TOKEN } });
	} }`
	for _, path := range []string{"/", "/binary", "/throw"} {
		body := map[string]any{"code": code, "secrets": map[string]string{"TOKEN": secret}, "request": map[string]any{"url": path}}
		res := execute(t, body)
		raw, _ := json.Marshal(res)
		if strings.Contains(string(raw), secret) {
			t.Errorf("%s: JSON result contains the secret: %s", path, raw)
		}
		if res.Response != nil && res.Response.BodyEncoding == "base64" {
			decoded, _ := base64.StdEncoding.DecodeString(res.Response.Body)
			if strings.Contains(string(decoded), secret) || !strings.Contains(string(decoded), "[REDACTED]") {
				t.Errorf("%s: binary body = %q, want the secret masked", path, decoded)
			}
		}
		if !strings.Contains(string(raw), "[REDACTED]") {
			t.Errorf("%s: nothing was masked: %s", path, raw)
		}
		for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
			for _, a := range openStream(t, gatewayURL(t), accept, body).all(true) {
				if strings.Contains(a.raw, secret) {
					t.Errorf("%s %s: event contains the secret: %s", path, accept, a.raw)
				}
			}
		}
	}
	if strings.Contains(shared.logs.String(), secret) {
		t.Error("the gateway's log contains the secret")
	}
}
