// Package loadertest helps tests run the real workerd runtime.
package loadertest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// Workerd returns the workerd binary npm installed into worker/node_modules
// (`make test` installs it), failing the test if it is missing.
func Workerd(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "worker", "node_modules", ".bin", "workerd")
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("workerd is not installed (run `make test`, which runs npm ci in worker/): %v", err)
	}
	return path
}

// StartLocal starts a local backend, with the given changes to its default
// configuration (and a queue of 64, the gateway's default), and waits until
// every process in its pool is ready.
func StartLocal(tb testing.TB, log zerolog.Logger, opts ...func(*local.Config)) *local.Pool {
	tb.Helper()
	cfg := local.Config{Workerd: Workerd(tb), StartTimeout: 30 * time.Second, QueueSize: 64}
	for _, opt := range opts {
		opt(&cfg)
	}
	l, err := local.New(cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	want := cfg.Processes
	if want <= 0 {
		want = 1
	}
	if !testwait.Until(30*time.Second, func() bool { return len(l.PIDs()) >= want && l.Ready(context.Background()) == nil }) {
		l.Close()
		tb.Fatalf("backend not ready after 30s")
	}
	return l
}

// Processes returns an option setting the pool's size.
func Processes(n int) func(*local.Config) {
	return func(c *local.Config) { c.Processes = n }
}

// WaitReady waits until b is ready, failing the test after timeout.
func WaitReady(tb testing.TB, b execution.Backend, timeout time.Duration) {
	tb.Helper()
	if !testwait.Until(timeout, func() bool { return b.Ready(context.Background()) == nil }) {
		tb.Fatalf("backend not ready after %v", timeout)
	}
}

// Buffer is a bytes.Buffer safe for concurrent use, for capturing the log of
// a gateway under test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Hello is a guest that logs "hi" and answers "ok".
const Hello = `export default { fetch() { console.log("hi"); return new Response("ok"); } }`

// Job returns a job running code as its main module, with the caps the
// gateway's defaults give and a plain GET request.
func Job(id, code string, timeout time.Duration) *execution.Job {
	return &execution.Job{
		ID:                id,
		Modules:           map[string]string{"main.js": code},
		MainModule:        "main.js",
		Env:               map[string]any{},
		CompatibilityDate: "2026-11-16",
		Request:           execution.GuestRequest{Method: "GET", URL: "http://localhost/", Headers: map[string]string{}},
		MaxResponseBytes:  1 << 20,
		MaxLogLineBytes:   64 << 10,
		MaxLogBytes:       1 << 20,
		Timeout:           timeout,
	}
}

// Run executes j on b and returns its events.
func Run(tb testing.TB, b execution.Backend, j *execution.Job) ([]execution.Event, error) {
	tb.Helper()
	var events []execution.Event
	err := b.Execute(tb.Context(), j, func(ev execution.Event) error {
		events = append(events, ev)
		return nil
	})
	return events, err
}

// LastResult returns the result events end with, failing the test unless
// they end with exactly one.
func LastResult(tb testing.TB, events []execution.Event) *execution.Result {
	tb.Helper()
	if len(events) == 0 || events[len(events)-1].Type != execution.EventResult {
		tb.Fatalf("events = %+v, want them to end with a result", events)
	}
	for _, ev := range events[:len(events)-1] {
		if ev.Type == execution.EventResult {
			tb.Fatalf("events = %+v, want exactly one result", events)
		}
	}
	return events[len(events)-1].Result
}

// Result runs j on b and returns its result, failing the test if it could
// not start.
func Result(tb testing.TB, b execution.Backend, j *execution.Job) *execution.Result {
	tb.Helper()
	events, err := Run(tb, b, j)
	if err != nil {
		tb.Fatalf("Execute(%s) = %v", j.ID, err)
	}
	return LastResult(tb, events)
}

// ShimCall posts body to path of a shim of l, signed as the gateway signs,
// and returns the answer, whose body is closed when the test ends.
func ShimCall(tb testing.TB, l *local.Pool, path string, body []byte) *http.Response {
	tb.Helper()
	resp := shimPost(tb, l, path, body)
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

func shimPost(tb testing.TB, l *local.Pool, path string, body []byte) *http.Response {
	tb.Helper()
	base, secret := l.ShimURL()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	shim.Sign(req, body, secret, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

// ShimExecutions asks a shim of l how many executions it holds (their
// outbound records; each from its start until it ends or its caller hangs
// up), through its signed /stats route.
func ShimExecutions(tb testing.TB, l *local.Pool) int {
	tb.Helper()
	resp := shimPost(tb, l, "/stats", nil)
	defer resp.Body.Close()
	var stats struct{ Executions int }
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		tb.Fatalf("/stats: %v", err)
	}
	return stats.Executions
}
