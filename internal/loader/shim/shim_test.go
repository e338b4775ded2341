// Tests of the shim Worker itself, called directly and signed, in the real
// runtime: authentication before reading, stream cancellation, relay
// bounds (outbound_test.go: what it records of outbound requests). They
// are families of hostile calls, each a table, and share the raw-call
// helpers at the top.
package shim_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// rawLines runs j on the shim directly and returns the NDJSON lines it sends,
// internal ones (ping, net) included.
func rawLines(t *testing.T, l *local.Pool, j *execution.Job) []string {
	t.Helper()
	body, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	resp := loadertest.ShimCall(t, l, "/run", body)
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("/run answered %s: %s", resp.Status, data)
	}
	var lines []string
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(nil, 8<<20)
	for scanner.Scan() {
		if line := scanner.Text(); line != `{"type":"ping"}` {
			lines = append(lines, line)
		}
	}
	return lines
}

// rawPost sends a POST with the given headers to the shim over a plain
// connection, and returns the status line of the answer, which must come
// before any of the declared body is sent.
func rawPost(t *testing.T, base string, headers map[string]string) (string, net.Conn) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("POST /run HTTP/1.1\r\nHost: shim\r\n")
	for k, v := range headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	return strings.TrimSpace(status), conn
}

func TestShimRefusesUnsignedOrOversizedBodiesUnread(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	base, _ := l.ShimURL()
	pid := l.PIDs()[0]
	before := local.ResidentBytes(pid)
	now := fmt.Sprint(time.Now().Unix())
	forged := map[string]string{
		shim.HeaderTimestamp: now,
		shim.HeaderNonce:     "n",
		shim.HeaderSignature: strings.Repeat("ab", 32),
	}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range forged {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	const huge = "419430400" // 400 MB
	cases := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"unsigned 400 MB", map[string]string{"Content-Length": huge}, "401"},
		{"unsigned chunked", map[string]string{"Transfer-Encoding": "chunked"}, "401"},
		{"stale signature 400 MB", with(map[string]string{shim.HeaderTimestamp: "1000", "Content-Length": huge}), "401"},
		{"malformed signature 400 MB", with(map[string]string{shim.HeaderSignature: "nothex", "Content-Length": huge}), "401"},
		{"forged signature 400 MB", with(map[string]string{"Content-Length": huge}), "413"},
		{"forged signature chunked", with(map[string]string{"Transfer-Encoding": "chunked"}), "411"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, conn := rawPost(t, base, tc.headers)
			defer conn.Close()
			if !strings.Contains(status, " "+tc.want+" ") {
				t.Fatalf("status = %q, want %s", status, tc.want)
			}
			// Keep sending the declared body for a while: the shim must not
			// be holding on to it.
			conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			chunk := make([]byte, 1<<20)
			for range 64 {
				if _, err := conn.Write(chunk); err != nil {
					break
				}
			}
		})
	}
	if grew := local.ResidentBytes(pid) - before; grew > 64<<20 {
		t.Errorf("workerd grew by %d MB refusing bodies", grew>>20)
	}
}

func TestGuestThatKeepsItsStreamOpenHoldsNothing(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	cases := map[string]string{
		"swallows close": `WritableStreamDefaultWriter.prototype.close = function () { return new Promise(() => {}); };`,
		"breaks call":    `const apply = Reflect.apply; Function.prototype.call = function () { return new Promise(() => {}); };`,
		// cloudflare:workers' waitUntil is the runtime's own, which the
		// wrapper does not see (ctx.waitUntil it does): the guest keeps its
		// isolate busy past its result.
		"keeps logging": `setInterval(() => console.log("late"), 1);
			await import("cloudflare:workers").then((m) => m.waitUntil(new Promise(() => {})));`,
		"spins later": `Function.prototype.call = function () { return new Promise(() => {}); };
			WritableStreamDefaultWriter.prototype.close = () => new Promise(() => {});
			setTimeout(() => { for (;;) {} }, 300);`,
		"all of it": `WritableStreamDefaultWriter.prototype.close = () => new Promise(() => {});
			WritableStreamDefaultWriter.prototype.abort = () => new Promise(() => {});
			setInterval(() => console.log("late"), 1);
			await import("cloudflare:workers").then((m) => m.waitUntil(new Promise(() => {})));`,
	}
	for name, patch := range cases {
		t.Run(name, func(t *testing.T) {
			code := `export default { async fetch(request, env, ctx) { ` + patch + ` console.log("done"); return new Response("ok"); } }`
			events, err := loadertest.Run(t, l, loadertest.Job("open-"+strings.ReplaceAll(name, " ", "-"), code, 30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			res := loadertest.LastResult(t, events)
			if !res.Success || res.Response.Body != "ok" {
				t.Errorf("result = %+v, %+v; want success", res.Error, res.Response)
			}
			// Once the result is in, the shim lets go of the guest: it
			// signals nothing, so poll what it holds.
			if !testwait.Until(15*time.Second, func() bool { return loadertest.ShimExecutions(t, l) == 0 }) {
				t.Errorf("the shim holds %d executions after the result, want none", loadertest.ShimExecutions(t, l))
			}
			// A spinner left behind fires 300 ms after the handler returned.
			// The next execution waits 1 s, so it is still waiting then
			// (it started later): a spinner would block the process, and
			// the next would end in a timeout instead of its answer.
			next, err := loadertest.Run(t, l, loadertest.Job("next", `export default { async fetch() {
				await new Promise((r) => setTimeout(r, 1000));
				return new Response("free");
			} }`, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if res := loadertest.LastResult(t, next); !res.Success || res.Response.Body != "free" {
				t.Errorf("next execution = %+v, want success: nothing left running", res.Error)
			}
			if err := l.Ready(t.Context()); err != nil {
				t.Errorf("the process is not ready after the execution: %v", err)
			}
			base, _ := l.ShimURL()
			client := &http.Client{Timeout: 2 * time.Second}
			resp, err := client.Get(base + "/health")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("health = %v, %v", resp, err)
			}
			resp.Body.Close()
		})
	}
}

func TestShimRefusesModulesNamedLikeTheWrapper(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	for _, name := range []string{"__dw_wrapper.js", "__dw_format.js", "./__dw_wrapper.js", "sub/__dw_x.js", "__DW_wrapper.js", "__dw_.js"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			j := loadertest.Job("reserved", `export default { fetch() { return new Response("ok"); } }`, 5*time.Second)
			j.Modules[name] = `export default { fetch() { return new Response("replaced"); } }`
			_, err := loadertest.Run(t, l, j)
			rejected, ok := err.(*execution.RejectedError)
			if !ok || rejected.Field != "modules" {
				t.Errorf("Execute = %v, want the module name refused", err)
			}
		})
	}
}

// TestShimRelaysALineAtTheCap: a record as long as the record cap allows
// is relayed, one with headers past it ends the execution output_limit,
// and an error name past it is cut by the wrapper (an exception), each
// without stalling: a line stalled until the minute's timeout would end
// timeout.
func TestShimRelaysALineAtTheCap(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	cases := []struct {
		name, code, want string
	}{
		// 1 MiB of bytes that JSON escapes to six each: a 6 MB line.
		{"escaped body at the cap", `export default { fetch() { return new Response("\x01".repeat(1 << 20)); } }`, `"success":true`},
		{"escaped body below the cap", `export default { fetch() { return new Response("\x1f".repeat((1 << 20) - 1)); } }`, `"success":true`},
		// Headers are not cut by the wrapper: a record past the cap is
		// refused before it is parsed.
		{"headers past the cap", `export default { fetch() { return new Response("x", { headers: { "x-big": "\x01".repeat(8 << 20) } }); } }`, `"code":"output_limit"`},
		{"error past the cap", `export default { fetch() { const e = new Error("m"); Object.defineProperty(e, "name", { value: "\x01".repeat(8 << 20) }); throw e; } }`, `"code":"exception"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := rawLines(t, l, loadertest.Job("cap", tc.code, time.Minute))
			last := lines[len(lines)-1]
			if !strings.Contains(last, tc.want) {
				t.Errorf("result = %.300s, want %s", last, tc.want)
			}
		})
	}
}
