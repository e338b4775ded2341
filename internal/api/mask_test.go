package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// maskSecrets are secrets shaped to break a naive masker: each is written
// escaped, lowercased or percent-encoded somewhere on its way out.
var maskSecrets = []struct{ name, value string }{
	{"pem key", "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAu+9Qz/Xk\n-----END PRIVATE KEY-----\n"},
	{"json credential", `{"type":"service_account","private_key":"-----BEGIN KEY-----\nQk9OS\n","client_secret":"c\\d/e"}`},
	{"url delimiters", " p@ss word&x=1?y#z/%41+b;c=d "},
	{"non-ascii", "clé-secrète-ключ-🔑-日本語"},
	{"mixed case", "AbCdEf123XyZQw"},
	{"every quote", "O'Brien \"said\" `hi` ${x}\t\\ end"},
}

// maskGuest puts env.S everywhere a guest can: console output in every
// formatting, response header names and values, the body (text or bytes),
// outbound URLs and methods, and thrown errors. It first reports, hex-encoded
// so that no masker touches them, the spellings of S the runtime itself
// produces: the test then looks for each of them in everything the gateway
// wrote.
const maskGuest = `
import { inspect } from "node:util";
const hex = (s) => Array.from(new TextEncoder().encode(s), (b) => b.toString(16).padStart(2, "0")).join("");
const attempt = (f) => { try { return f(); } catch (err) { return undefined; } };

// targets are URLs with S in the query, path, host and userinfo, spelt
// raw or encoded as a guest would.
function targets(S) {
  const search = new URL("https://denied.example.org/search");
  search.searchParams.set("q", S);
  const list = ["https://api.example.invalid/v1?token=" + encodeURIComponent(S), search.href,
    "https://denied.example.org/p/" + encodeURIComponent(S), "https://" + S + ".example.org/",
    "https://user:" + encodeURIComponent(S) + "@denied.example.org/"];
  // Raw where the parser keeps it whole (a "#" or "?" would split it).
  if (!S.includes("#")) list.push("https://denied.example.org/raw?q=" + S);
  if (!/[?#]/.test(S)) list.push("https://denied.example.org/raw/" + S);
  return list;
}

function spellings(S) {
  const forms = [S, S.trim(), JSON.stringify(S).slice(1, -1), inspect(S).slice(1, -1), inspect({ j: JSON.stringify(S) }),
    S.toLowerCase(), encodeURIComponent(S), new URLSearchParams({ q: S }).toString().slice(2)];
  const host = attempt(() => new URL("https://" + S + ".example.org/").hostname);
  if (host !== undefined) forms.push(host.slice(0, -".example.org".length));
  for (const t of targets(S)) forms.push(attempt(() => new Request(t).url));
  return forms.filter((f) => f !== undefined && f.length >= 6);
}

async function fetches(S) {
  const out = [];
  for (const t of targets(S)) {
    try { await fetch(t); out.push("ok"); } catch (err) { out.push(String(err)); }
  }
  try { await fetch("https://denied.example.org/", { method: S }); } catch (err) { out.push(String(err)); }
  return out;
}

export default {
  async fetch(request, env) {
    const S = env.S;
    const path = new URL(request.url).pathname;
    if (path === "/throw") throw new Error("failed: " + S);
    if (path === "/throw-string") throw S;
    if (path === "/throw-object") throw { s: S, j: JSON.stringify(env) };
    console.log("forms " + hex(JSON.stringify(spellings(S))));
    console.log(env);
    console.log(JSON.stringify(env));
    console.log({ s: S });
    console.info("%o | %j | %s | %O", { s: S }, { s: S }, S, [S]);
    console.warn([S], new Map([[S, S]]), new Set([S]));
    console.error({ j: JSON.stringify(env), u: encodeURIComponent(S) });
    console.log(S.toLowerCase(), S.toUpperCase().toLowerCase());
    console.log((await fetches(S)).join("\n"));
    if (path === "/binary") {
      return new Response(new Uint8Array([0xff, ...new TextEncoder().encode(S), 0xfe, ...new TextEncoder().encode(JSON.stringify(env))]));
    }
    const headers = new Headers();
    for (const [k, v] of [["x-value", S], [S, "as a name"], ["x-" + S, "prefixed"], ["x-json", JSON.stringify(S)], ["x-uri", encodeURIComponent(S)]]) {
      attempt(() => headers.set(k, v));
    }
    const body = [S, JSON.stringify(env), inspect(env), inspect({ s: S }), encodeURIComponent(S), S.toLowerCase()].join("\n");
    return new Response(body, { headers });
  },
};`

// TestSecretsMaskedInEverySpelling runs maskGuest for each secret through
// the real runtime, as JSON and as both streams, and looks for every
// spelling of the secret (and the JSON encoding of each) in the whole HTTP
// response and in the gateway's log.
func TestSecretsMaskedInEverySpelling(t *testing.T) {
	t.Parallel()
	// A runtime of its own: these executions make many outbound requests,
	// and the log searched is this runtime's alone.
	base, _, logs := dedicated(t)
	for _, sec := range maskSecrets {
		t.Run(sec.name, func(t *testing.T) {
			t.Parallel()
			body := func(path string) map[string]any {
				return map[string]any{
					"code": maskGuest, "compatibilityFlags": []string{"nodejs_compat"},
					"env": map[string]any{"PLAIN": "visible"}, "secrets": map[string]string{"S": sec.value},
					"allowOutbound": []string{"api.example.invalid"}, "request": map[string]any{"url": path},
				}
			}
			var forms []string
			var haystacks [][]byte
			for _, path := range []string{"/", "/binary", "/throw", "/throw-string", "/throw-object"} {
				for _, accept := range []string{"application/json", "application/x-ndjson", "text/event-stream"} {
					all, data := rawExecute(t, base, accept, body(path))
					haystacks = append(haystacks, all)
					if accept != "application/json" {
						continue
					}
					var res execution.Result
					if err := json.Unmarshal(data, &res); err != nil {
						t.Fatalf("decode result: %v: %s", err, data)
					}
					checkMasked(t, path, &res)
					if path == "/" {
						forms = append(reportedSpellings(t, &res), sec.value)
					}
					if res.Response != nil && res.Response.BodyEncoding == execution.EncodingBase64 {
						raw, err := base64.StdEncoding.DecodeString(res.Response.Body)
						if err != nil {
							t.Fatal(err)
						}
						haystacks = append(haystacks, raw)
					}
				}
			}
			haystacks = append(haystacks, []byte(logs.String()))
			for _, f := range forms {
				for _, enc := range encodings(f) {
					for _, h := range haystacks {
						if i := bytes.Index(h, []byte(enc)); i >= 0 {
							t.Errorf("spelling %q (written %q) appears: ...%s...", f, enc, h[max(0, i-80):min(len(h), i+len(enc)+80)])
						}
					}
				}
			}
		})
	}
}

// reportedSpellings decodes the guest's hex-encoded list of spellings.
func reportedSpellings(t *testing.T, res *execution.Result) []string {
	t.Helper()
	for _, l := range res.Logs {
		if h, ok := strings.CutPrefix(l.Message, "forms "); ok {
			data, err := hex.DecodeString(h)
			if err != nil {
				t.Fatalf("forms line %q: %v", l.Message, err)
			}
			var forms []string
			if err := json.Unmarshal(data, &forms); err != nil {
				t.Fatal(err)
			}
			if len(forms) < 6 {
				t.Fatalf("guest reported %q, want its spellings", forms)
			}
			return forms
		}
	}
	t.Fatalf("no forms line in %+v", res.Logs)
	return nil
}

// checkMasked checks that each place the guest put the secret shows it
// masked (so the search for spellings is not passing on empty output).
func checkMasked(t *testing.T, path string, res *execution.Result) {
	t.Helper()
	const masked = "[REDACTED]"
	if strings.HasPrefix(path, "/throw") {
		if res.Error == nil || !strings.Contains(res.Error.Message, masked) {
			t.Errorf("%s: error = %+v, want the secret masked in it", path, res.Error)
		}
		return
	}
	wantSuccess(t, res)
	if strings.Count(res.Stdout, masked) < 8 || strings.Count(res.Stderr, masked) < 3 {
		t.Errorf("%s: stdout %q, stderr %q: want the secret masked in every log", path, res.Stdout, res.Stderr)
	}
	maskedURLs := 0
	for _, o := range res.Outbound {
		if strings.Contains(o.URL, masked) {
			maskedURLs++
		}
	}
	if maskedURLs < 3 {
		t.Errorf("%s: outbound = %+v, want the guest's requests recorded, the secret masked", path, res.Outbound)
	}
	if path == "/" && (!strings.Contains(res.Response.Body, masked) || !strings.Contains(res.Response.Headers["x-json"], masked)) {
		t.Errorf("%s: response %+v, want the secret masked in body and headers", path, res.Response)
	}
}

// encodings are the ways a spelling can be written into a JSON body or a
// log line: raw, by encoding/json (with and without HTML escapes), and by
// zerolog.
func encodings(s string) []string {
	var out []string
	add := func(quoted string) {
		if len(quoted) >= 2 {
			out = append(out, quoted[1:len(quoted)-1])
		}
	}
	out = append(out, s)
	html, _ := json.Marshal(s)
	add(string(html))
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	add(strings.TrimSpace(b.String()))
	var z bytes.Buffer
	zl := zerolog.New(&z)
	zl.Log().Str("m", s).Send()
	var line struct{ M json.RawMessage }
	if json.Unmarshal(z.Bytes(), &line) == nil {
		add(string(line.M))
	}
	return out
}

// rawExecute posts body to base with accept and returns the whole response (the
// status line and headers included) and its body.
func rawExecute(t *testing.T, base, accept string, body any) (all, data []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(executeRequest(t, base, accept, body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	fmt.Fprintf(&out, "%s\n", resp.Status)
	_ = resp.Header.Write(&out)
	data, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(data)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /execute (%s) = %s", accept, out.Bytes())
	}
	return out.Bytes(), data
}
