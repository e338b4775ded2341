package playground_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

var screenshot = flag.String("screenshot", "", "write a PNG of the page after a run to this file (make screenshot)")

// ctxT is a chromedp context: the browser or one of its tabs.
type ctxT = context.Context

// gateways are the real gateway handler on a real workerd pool, served
// twice: without API keys and with one key.
type gateways struct {
	open, keyed string
	key         string // the keyed gateway's key
}

func startGateways(t *testing.T) *gateways {
	t.Helper()
	log := zerolog.New(&loadertest.Buffer{})
	backend := loadertest.StartLocal(t, log, loadertest.Processes(1))
	t.Cleanup(func() { backend.Close() })
	g := &gateways{}
	// Dependencies come from the fixture packages, served by a test registry.
	m, err := packages.New(packages.Options{Registry: packagestest.Upstream(t).URL(), Dir: t.TempDir(), MaxPackages: 500, MaxBytes: 100 << 20,
		ResolveTimeout: time.Minute, Refresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	withPackages := apitest.Options()
	withPackages.Packages = m
	open := httptest.NewServer(apitest.Serve(t, log, backend, withPackages))
	t.Cleanup(open.Close)
	key, entry := apitest.NewKey(t, "browser")
	opts := apitest.Options()
	opts.Keys = auth.NewKeyring([]auth.Key{entry})
	keyed := httptest.NewServer(apitest.Serve(t, log, backend, opts))
	t.Cleanup(keyed.Close)
	g.open, g.keyed, g.key = open.URL, keyed.URL, key
	return g
}

// chromium returns Debian's chromium, failing (not skipping) the test when
// it is missing: `make test` installs it first (make system-deps).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("chromium not found: the playground's browser test needs it " +
		"(make test installs Debian's chromium when missing: make system-deps; or set CHROMIUM to its path)")
	return ""
}

// newBrowser starts a headless chromium with a fresh profile for the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return browser
}

// tab opens a new tab on url, recording CSP violations in
// window.__cspViolations before any of the page's scripts run.
func tab(t *testing.T, browser context.Context, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	run(t, ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));`,
			})
			return err
		}),
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(".cm-content")),
	)
	return ctx
}

// run runs the steps in the tab, failing the test on an error.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JS expression in the tab (awaiting a promise).
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// text returns the text content of the first element matching sel ("" if none).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, `(document.querySelector(`+quote(sel)+`) || {}).textContent || ""`)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitResult waits until the result box holds an answer and returns its state.
func waitResult(t *testing.T, ctx context.Context) string {
	t.Helper()
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#result[data-state]")))
	return eval[string](t, ctx, `document.getElementById("result").dataset.state`)
}

// noCSPViolations fails the test if the page broke its own policy.
func noCSPViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	if v := eval[[]string](t, ctx, `window.__cspViolations`); len(v) > 0 {
		t.Errorf("CSP violations: %q", v)
	}
}

// shareLink returns the page's URL with a request in its fragment, as the
// page's Link button writes it.
func shareLink(base string, req map[string]any) string {
	data, _ := json.Marshal(req)
	return base + "/playground#r=" + base64.RawURLEncoding.EncodeToString(data)
}

// consoleMessages returns the console lines' messages.
func consoleMessages(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return eval[[]string](t, ctx, `[...document.querySelectorAll("#console .message")].map((e) => e.textContent)`)
}

func writeScreenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	if *screenshot == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// TestMain serves the compiler's child process when the test binary is
// started as one (dependencies are bundled out of process).
func TestMain(m *testing.M) {
	transpile.MaybeServeChild()
	os.Exit(m.Run())
}
