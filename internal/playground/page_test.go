package playground_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestPlaygroundInBrowser drives the page in headless chromium against the
// real gateway on a real workerd pool.
func TestPlaygroundInBrowser(t *testing.T) {
	g := startGateways(t)
	browser := newBrowser(t)
	t.Run("console lines arrive before the guest ends", func(t *testing.T) { testStreaming(t, g, browser) })
	t.Run("examples", func(t *testing.T) { testExamples(t, g, browser) })
	t.Run("guest output is text, never HTML", func(t *testing.T) { testOutputIsText(t, g, browser) })
	t.Run("stop, bad fields and refusals", func(t *testing.T) { testStopAndRefusals(t, g, browser) })
	t.Run("auth error without a key", func(t *testing.T) { testAuth(t, g, browser) })
	t.Run("curl command reproduces the run", func(t *testing.T) { testCurl(t, g, browser) })
	t.Run("capabilities picker", func(t *testing.T) { testCapabilities(t, g, browser) })
}

// pick selects an example as a user would.
func pick(t *testing.T, ctx ctxT, id string) {
	t.Helper()
	eval[chromedp.Void](t, ctx, `(() => { const s = document.getElementById("example"); s.value = `+quote(id)+
		`; s.dispatchEvent(new Event("change")); })()`)
	if got := eval[string](t, ctx, `document.getElementById("example").value`); got != id {
		t.Fatalf("example %q not offered (selected %q)", id, got)
	}
}

// setKey sets the API key field as typing would.
func setKey(t *testing.T, ctx ctxT, key string) {
	t.Helper()
	eval[chromedp.Void](t, ctx, `(() => { const k = document.getElementById("key"); k.value = `+quote(key)+
		`; k.dispatchEvent(new Event("input")); })()`)
}

// runAndWait clicks Run and waits for the result; it returns the result
// box's state (success, failure or problem).
func runAndWait(t *testing.T, ctx ctxT) string {
	t.Helper()
	// The click runs run() up to its first await, which clears the last result.
	eval[chromedp.Void](t, ctx, `document.getElementById("run").click()`)
	return waitResult(t, ctx)
}

// clearResult empties the result box, so that a test sees whether a new one comes.
const clearResult = `document.getElementById("result").replaceChildren(); delete document.getElementById("result").dataset.state`

// firstLine clicks Run and resolves once the first console line is on the
// page, with what the page shows at the end of the task that rendered it:
// lines that came in the same read would be rendered by then too.
const firstLine = `new Promise((resolve) => {
  const list = document.getElementById("console"), result = document.getElementById("result");
  new MutationObserver((_, obs) => {
    if (!list.children.length) return;
    obs.disconnect();
    const first = list.children[0].querySelector(".message").textContent;
    setTimeout(() => resolve({first, lines: list.children.length, result: result.dataset.state || ""}), 0);
  }).observe(list, {childList: true});
  document.getElementById("run").click();
})`

func testStreaming(t *testing.T, g *gateways, browser ctxT) {
	ctx := tab(t, browser, g.open+"/") // GET / redirects to the page
	if got := eval[string](t, ctx, `location.pathname`); got != "/playground" {
		t.Errorf("GET / led to %q, want /playground", got)
	}
	pick(t, ctx, "stream") // logs tick 1..5, 400 ms apart, then returns
	var first struct {
		First  string
		Lines  int
		Result string
	}
	data := eval[json.RawMessage](t, ctx, firstLine)
	if err := json.Unmarshal(data, &first); err != nil {
		t.Fatal(err)
	}
	if first.First != "tick 1" || first.Result != "" || first.Lines >= 5 {
		t.Fatalf("when the first line showed: %+v, want tick 1 alone, before the guest's other ticks and its result", first)
	}
	if state := waitResult(t, ctx); state != "success" {
		t.Fatalf("result %q: %s", state, text(t, ctx, "#result"))
	}
	want := []string{"tick 1", "tick 2", "tick 3", "tick 4", "tick 5"}
	if got := consoleMessages(t, ctx); !slices.Equal(got, want) {
		t.Errorf("console = %q, want %q", got, want)
	}
	timing := text(t, ctx, "#result .timing")
	if !regexp.MustCompile(`^\d+(\.\d+)? ms in the runtime · \d+ ms round trip$`).MatchString(timing) {
		t.Errorf("timing = %q, want the runtime's and the round trip's ms", timing)
	}
	if body := text(t, ctx, "#result .body"); body != "five ticks" {
		t.Errorf("response body = %q, want %q", body, "five ticks")
	}
	noCSPViolations(t, ctx)
	writeScreenshot(t, ctx)
}

func testExamples(t *testing.T, g *gateways, browser ctxT) {
	ctx := tab(t, browser, g.open+"/playground")
	tests := []struct {
		id, state, code string
		console, result []string // substrings that must appear
	}{
		{id: "seed", state: "success", console: []string{"Isolated worker running!"}, result: []string{"Done", "200", "worker"}},
		{id: "script", state: "success", console: []string{"counted 4 words"}, result: []string{"script", "returned", `"isolate": 2`}},
		{id: "packages", state: "success", console: []string{"dependencies: nanoid@5.0.9, zod@3.", "order "}, result: []string{`"qty": 3`}},
		{id: "env", state: "success", console: []string{"Hello, playground!", "the token is [REDACTED]"}, result: []string{`"limit":3`}},
		{id: "typescript", state: "success", console: []string{"order A-1 totals 20"}, result: []string{`{"total":20}`}},
		{id: "error", state: "failure", code: "exception", console: []string{"connecting..."}, result: []string{"TypeError", "at connect"}},
		{id: "outbound", state: "success", console: []string{"fetch failed:"}, result: []string{"GET https://example.com/ denied"}},
	}
	for _, tt := range tests {
		pick(t, ctx, tt.id)
		if state := runAndWait(t, ctx); state != tt.state {
			t.Errorf("%s: result %q, want %q: %s", tt.id, state, tt.state, text(t, ctx, "#result"))
			continue
		}
		if code := text(t, ctx, "#result .code"); code != tt.code {
			t.Errorf("%s: error code %q, want %q", tt.id, code, tt.code)
		}
		lines, result := consoleMessages(t, ctx), text(t, ctx, "#result")
		for _, s := range tt.console {
			if !contains(lines, s) {
				t.Errorf("%s: console %q lacks %q", tt.id, lines, s)
			}
		}
		for _, s := range tt.result {
			if !strings.Contains(result, s) {
				t.Errorf("%s: result %q lacks %q", tt.id, result, s)
			}
		}
		if strings.Contains(strings.Join(lines, "\n")+result, "sk_test_not_a_real_token") {
			t.Errorf("%s: a secret's value is in the output", tt.id)
		}
	}
	noCSPViolations(t, ctx)
}

// htmlPayloads are spellings of markup that would run script or change the
// page if the page ever parsed guest output as HTML. Each carries data-pwned.
var htmlPayloads = []string{
	`<img src=x onerror="window.__pwned=1" data-pwned>`,
	`<svg data-pwned onload="window.__pwned=2"></svg>`,
	`<script data-pwned>window.__pwned=3</script>`,
	`"><img src=x data-pwned onerror=window.__pwned=4>`,
	`<iframe data-pwned srcdoc="<script>parent.__pwned=5</script>"></iframe>`,
	`<a data-pwned href="javascript:window.__pwned=6">x</a>`,
	`<style data-pwned>body{display:none}</style>`,
	`<details data-pwned open ontoggle="window.__pwned=7">`,
	`&lt;img src=x onerror=window.__pwned=8&gt;`,
}

func testOutputIsText(t *testing.T, g *gateways, browser ctxT) {
	list, _ := json.Marshal(htmlPayloads)
	guests := []struct{ name, code string }{
		{"console, response body and header", `const payloads = ` + string(list) + `;
export default {
  async fetch() {
    for (const p of payloads) { console.log(p); console.error(p); console.warn("%s", p); }
    return new Response(payloads.join("\n"), { status: 200, headers: { "content-type": "text/html; x=\"" + payloads[0].replaceAll('"', "'") + "\"" } });
  }
}`},
		{"error message and stack", `const payloads = ` + string(list) + `;
export default {
  async fetch() {
    for (const p of payloads) console.log(p);
    throw new Error(payloads.join(" "));
  }
}`},
		{"syntax error", htmlPayloads[0] + "\n" + htmlPayloads[2]},
	}
	for _, guest := range guests {
		ctx := tab(t, browser, shareLink(g.open, map[string]any{"code": guest.code}))
		state := runAndWait(t, ctx)
		if state == "problem" {
			t.Fatalf("%s: refused: %s", guest.name, text(t, ctx, "#result"))
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("[data-pwned]").length`); n != 0 {
			t.Errorf("%s: %d elements from guest output became HTML", guest.name, n)
		}
		if pwned := eval[bool](t, ctx, `"__pwned" in window`); pwned {
			t.Errorf("%s: guest output ran script", guest.name)
		}
		shown := strings.Join(consoleMessages(t, ctx), "\n") + text(t, ctx, "#result")
		if guest.name != "syntax error" {
			for _, p := range htmlPayloads {
				if !strings.Contains(shown, p) {
					t.Errorf("%s: %q is not shown as text", guest.name, p)
				}
			}
		}
		noCSPViolations(t, ctx)
	}
}

func testAuth(t *testing.T, g *gateways, browser ctxT) {
	ctx := tab(t, browser, g.keyed+"/playground")
	if hint := text(t, ctx, "#key-hint"); hint != "this gateway needs one" {
		t.Errorf("key hint = %q, want the page to say a key is needed", hint)
	}
	for _, key := range []string{"", "not-a-key", g.key + "x"} {
		setKey(t, ctx, key)
		run(t, ctx, chromedp.Click(chromedp.CSS("#run")), chromedp.WaitVisible(chromedp.CSS("#result[data-state]")))
		if state := waitResult(t, ctx); state != "problem" {
			t.Fatalf("key %q: result %q, want the 401 problem", key, state)
		}
		head, help := text(t, ctx, "#result .head"), text(t, ctx, "#result .auth-help")
		if !strings.Contains(head, "HTTP 401") || !strings.Contains(head, "unauthorized") || !strings.Contains(help, "API key") {
			t.Errorf("key %q: result %q / %q, want HTTP 401, unauthorized and what to do", key, head, help)
		}
		if focus := eval[string](t, ctx, `document.activeElement.id`); focus != "key" {
			t.Errorf("key %q: focus on %q, want the key field", key, focus)
		}
		eval[chromedp.Void](t, ctx, clearResult)
	}
	setKey(t, ctx, "")
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#key"), g.key))
	if state := runAndWait(t, ctx); state != "success" {
		t.Fatalf("with the key: result %q: %s", state, text(t, ctx, "#result"))
	}
	if kept := eval[string](t, ctx, `sessionStorage.getItem("gateway-playground-key") || ""`); kept != "" {
		t.Error("the key was stored without \"keep for this tab\"")
	}
	if strings.Contains(text(t, ctx, "#curl"), g.key) || strings.Contains(eval[string](t, ctx, `location.href`), g.key) {
		t.Error("the key's value is in the curl command or the address")
	}
	// "keep for this tab" keeps the key across a reload, in sessionStorage only.
	run(t, ctx, chromedp.Click(chromedp.CSS("#remember")), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".cm-content")))
	if kept := eval[string](t, ctx, `document.getElementById("key").value`); kept != g.key {
		t.Error("the kept key is not back after a reload")
	}
	if stored := eval[string](t, ctx, `localStorage.length + document.cookie`); stored != "0" {
		t.Errorf("the page stored something outside sessionStorage: %q", stored)
	}
	noCSPViolations(t, ctx)
}

// testStopAndRefusals: Stop cancels a run in flight; fields that are not
// JSON are caught before sending; a request the gateway refuses shows its
// problem; Link puts the request, never the key, in the address.
func testStopAndRefusals(t *testing.T, g *gateways, browser ctxT) {
	ctx := tab(t, browser, g.open+"/playground")
	pick(t, ctx, "stream")
	eval[json.RawMessage](t, ctx, firstLine)
	run(t, ctx, chromedp.Click(chromedp.CSS("#stop")))
	if state := waitResult(t, ctx); state != "problem" || text(t, ctx, "#result") != "stopped" {
		t.Errorf("after Stop: result %q %q, want stopped", state, text(t, ctx, "#result"))
	}
	if disabled := eval[bool](t, ctx, `document.getElementById("run").disabled`); disabled {
		t.Error("Run is still disabled after Stop")
	}

	pick(t, ctx, "seed")
	eval[chromedp.Void](t, ctx, clearResult)
	eval[chromedp.Void](t, ctx, `document.getElementById("env").value = "{not json"; document.getElementById("run").click()`)
	if msg := text(t, ctx, "#field-error"); !strings.Contains(msg, "env must be a JSON object") {
		t.Errorf("field error = %q, want env's", msg)
	}
	if state := eval[string](t, ctx, `document.getElementById("result").dataset.state || ""`); state != "" {
		t.Errorf("a request with a bad field was sent (result %q)", state)
	}

	eval[chromedp.Void](t, ctx, `document.getElementById("env").value = ""; document.getElementById("timeout").value = "99999999"`)
	if state := runAndWait(t, ctx); state != "problem" {
		t.Fatalf("timeoutMs over the cap: result %q, want a problem", state)
	}
	if got := text(t, ctx, "#result"); !strings.Contains(got, "HTTP 422") || !strings.Contains(got, "invalid_request") || !strings.Contains(got, "timeoutMs") {
		t.Errorf("422 shown as %q, want its status, code and field", got)
	}

	setKey(t, ctx, "some-key-value")
	eval[chromedp.Void](t, ctx, `document.getElementById("share").click()`)
	hash := eval[string](t, ctx, `location.hash`)
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(hash, "#r="))
	var shared map[string]any
	if err == nil {
		err = json.Unmarshal(data, &shared)
	}
	if err != nil || !strings.Contains(fmt.Sprint(shared["code"]), "Isolated worker running!") || shared["timeoutMs"] != 99999999.0 {
		t.Errorf("Link wrote %q (%v): %v, want the request", hash, err, shared)
	}
	if strings.Contains(string(data), "some-key-value") {
		t.Error("Link put the key in the address")
	}
	noCSPViolations(t, ctx)
}

// testCurl runs the page's curl command in a shell, with the key in
// $GATEWAY_KEY, and checks it gets the result the page got.
func testCurl(t *testing.T, g *gateways, browser ctxT) {
	ctx := tab(t, browser, g.keyed+"/playground")
	pick(t, ctx, "env") // template literals, ${...} and quotes: the shell must not touch them
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#key"), g.key))
	command := text(t, ctx, "#curl")
	if !strings.Contains(command, `"Authorization: Bearer $GATEWAY_KEY"`) || strings.Contains(command, g.key) {
		t.Fatalf("curl command %q: want the key from $GATEWAY_KEY, never its value", command)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: the test runs the page's curl command")
	}
	cmd := exec.CommandContext(t.Context(), "sh", "-c", command)
	cmd.Env = append(os.Environ(), "GATEWAY_KEY="+g.key)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	var result struct {
		Type    string
		Success bool
		Stdout  string
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &result); err != nil {
		t.Fatalf("curl output %q: %v", out, err)
	}
	want := "Hello, playground!\nthe token is [REDACTED]"
	if result.Type != "result" || !result.Success || result.Stdout != want {
		t.Errorf("curl result = %+v, want success with stdout %q", result, want)
	}
}
