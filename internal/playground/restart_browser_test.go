package playground_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// restartCode logs a line no other run logs, then waits longer than the
// execution may take: a run ends only when the test ends it.
const restartCode = `export default {
  async fetch() {
    console.log("run " + crypto.randomUUID());
    await new Promise((resolve) => setTimeout(resolve, 60000));
    return new Response("never");
  }
}`

// nextRun resolves once the console shows a line other than first (the
// next run's), or the result box an answer, with the console's lines then
// and the status line as it was when the console was emptied.
const nextRun = `(first) => new Promise((resolve) => {
  const list = document.getElementById("console"), result = document.getElementById("result");
  let statusWhenEmptied = "";
  const check = () => {
    const lines = [...list.querySelectorAll(".message")].map((e) => e.textContent);
    if (lines.length === 0 && !statusWhenEmptied) statusWhenEmptied = document.getElementById("status").textContent;
    if (lines.some((l) => l !== first) || result.dataset.state) {
      obs.disconnect();
      resolve({lines, statusWhenEmptied, result: result.dataset.state || ""});
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(list, {childList: true});
  obs.observe(result, {attributes: true});
  check();
})`

// TestRestartDropsTheVoidRunsLogs: when the runtime process running an
// execution dies of no doing of its own, the gateway runs it again and
// sends a restart event; the page drops the lines of the void run, says
// it runs again, and shows the new run's lines alone.
func TestRestartDropsTheVoidRunsLogs(t *testing.T) {
	log := zerolog.New(&loadertest.Buffer{})
	backend := loadertest.StartLocal(t, log, loadertest.Processes(1))
	t.Cleanup(func() { backend.Close() })
	srv := httptest.NewServer(apitest.Serve(t, log, backend, apitest.Options()))
	t.Cleanup(srv.Close)
	browser := newBrowser(t)
	ctx := tab(t, browser, shareLink(srv.URL, map[string]any{"code": restartCode, "timeoutMs": 30000}))

	var first struct{ First string }
	if err := json.Unmarshal(eval[json.RawMessage](t, ctx, firstLine), &first); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.First, "run ") {
		t.Fatalf("first console line %q, want the first run's", first.First)
	}
	if err := syscall.Kill(backend.PIDs()[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var next struct {
		Lines             []string
		StatusWhenEmptied string
		Result            string
	}
	if err := json.Unmarshal(eval[json.RawMessage](t, ctx, `(`+nextRun+`)(`+quote(first.First)+`)`), &next); err != nil {
		t.Fatal(err)
	}
	if next.Result != "" || len(next.Lines) != 1 || next.Lines[0] == first.First || !strings.HasPrefix(next.Lines[0], "run ") {
		t.Fatalf("after the runtime died the console shows %q (result %q), want the second run's line alone, not %q", next.Lines, next.Result, first.First)
	}
	if !strings.Contains(next.StatusWhenEmptied, "running again (runtime_crashed)") {
		t.Errorf("status when the restart came = %q, want it to say the execution runs again", next.StatusWhenEmptied)
	}

	run(t, ctx, chromedp.Click(chromedp.CSS("#stop")))
	if state := waitResult(t, ctx); state != "problem" || text(t, ctx, "#result") != "stopped" {
		t.Errorf("after Stop: result %q %q, want stopped", state, text(t, ctx, "#result"))
	}
	if got := consoleMessages(t, ctx); !slices.Equal(got, next.Lines) {
		t.Errorf("console after Stop = %q, want the second run's line %q", got, next.Lines)
	}
	noCSPViolations(t, ctx)
}
