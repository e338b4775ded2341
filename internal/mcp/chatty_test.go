//lint:file-ignore SA1019 tests the log-message path the server keeps for clients without a progress token (MCP logging is deprecated, still functional).

package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/mcp"
)

// chattyGuests print many lines as fast as they can, in several shapes;
// lines is what they print, in order, as notifications show each line.
var chattyGuests = map[string]struct {
	body  string
	lines func() []string
}{
	"100,000 short lines": {`for (let i = 0; i < 100000; i++) console.log("line " + i);`, each(100000, "[stdout] line %d")},
	"both streams":        {`for (let i = 0; i < 50000; i++) { console.log("out " + i); console.error("err " + i); }`, each(50000, "[stdout] out %d", "[stderr] err %d")},
	"levels":              {`for (let i = 0; i < 20000; i++) { console.debug("d" + i); console.info("i" + i); console.warn("w" + i); }`, each(20000, "[stdout] d%d", "[stdout] i%d", "[stderr] w%d")},
	"long lines":          {`const s = "x".repeat(4000); for (let i = 0; i < 2000; i++) console.log(i + s);`, each(2000, "[stdout] %d"+strings.Repeat("x", 4000))},
	"empty lines":         {`for (let i = 0; i < 100000; i++) console.log();`, each(100000, "[stdout] ")},
}

// each is n rounds of lines, each format given the round's number.
func each(n int, formats ...string) func() []string {
	return func() []string {
		var out []string
		for i := range n {
			for _, f := range formats {
				if strings.Contains(f, "%d") {
					out = append(out, fmt.Sprintf(f, i))
				} else {
					out = append(out, f)
				}
			}
		}
		return out
	}
}

// received is what an honest client got of one call's notifications.
type received struct {
	mu       sync.Mutex
	n        int
	progress []float64
	lines    []string
}

func (r *received) add(progress float64, lines ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.progress = append(r.progress, progress)
	r.lines = append(r.lines, lines...)
}

// TestChattyGuestCompletes: an honest MCP client (the SDK's own) calls
// execute on a guest that prints as fast as it can. The call ends with the
// result, not "ended without a result" (the execution was cancelled as a
// slow client's when notifications, one a line, fell behind), whether the
// lines go out as progress notifications or as log messages; the client
// gets at most mcp.MaxNotifications, at most one per mcp.NotifyInterval
// (and a last one before the result), each line it gets in the guest's
// order, and progress that only grows.
func TestChattyGuestCompletes(t *testing.T) {
	t.Parallel()
	logs := &loadertest.Buffer{}
	base := loggedGateway(t, nil, logs)
	t.Cleanup(func() {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "slow") || strings.Contains(l, "cancel") {
				t.Log(l)
			}
		}
	})
	for name, guest := range chattyGuests {
		for _, path := range []string{"progress", "log messages"} {
			t.Run(name+"/"+path, func(t *testing.T) {
				t.Parallel()
				got := &received{}
				opts := &sdk.ClientOptions{
					ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
						got.add(req.Params.Progress, strings.Split(req.Params.Message, "\n")...)
					},
					LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
						got.add(0, logLines(t, req.Params.Data)...)
					},
				}
				s := connect(t, base, "", opts)
				params := &sdk.CallToolParams{Name: "execute", Arguments: map[string]any{"timeoutMs": 30000,
					"code": "export default { async fetch() {\n" + guest.body + "\nreturn new Response(\"done\"); } }"}}
				if path == "progress" {
					params.SetProgressToken("chatty")
				} else if err := s.SetLoggingLevel(t.Context(), &sdk.SetLoggingLevelParams{Level: "debug"}); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				res, err := s.CallTool(t.Context(), params)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("CallTool = %v, want the result", err)
				}
				out := structured(t, res)
				resp, _ := out["response"].(map[string]any)
				if res.IsError || out["success"] != true || resp["body"] != "done" {
					t.Fatalf("result = %.300s, want success", text(t, res))
				}
				waitFor(t, func() bool { got.mu.Lock(); defer got.mu.Unlock(); return got.n > 0 })
				got.mu.Lock()
				defer got.mu.Unlock()
				if bound := int(took/mcp.NotifyInterval) + 2; got.n > bound || got.n > mcp.MaxNotifications {
					t.Errorf("%d notifications in %v, want at most %d (one per %v and a last one) and %d", got.n, took, bound, mcp.NotifyInterval, mcp.MaxNotifications)
				}
				for i := 1; i < len(got.progress); i++ {
					if path == "progress" && got.progress[i] <= got.progress[i-1] {
						t.Errorf("progress %v after %v, want it to grow", got.progress[i], got.progress[i-1])
					}
				}
				t.Logf("%d notifications, %d lines notified, in %v", got.n, len(got.lines), took)
				inOrder(t, got.lines, guest.lines())
				// The result a model reads stays small however much was printed.
				if size := resultSize(t, res); size > 64<<10 {
					t.Errorf("the tool result is %d bytes, want at most 64 KiB", size)
				}
			})
		}
	}
}

// logLines reads a log message's data: one line, or {"lines": [...]}.
func logLines(t *testing.T, data any) []string {
	b, _ := json.Marshal(data)
	var batch struct {
		Lines []struct{ Stream, Message string } `json:"lines"`
	}
	var one struct{ Stream, Message string }
	if json.Unmarshal(b, &batch) == nil && batch.Lines != nil {
		var out []string
		for _, l := range batch.Lines {
			out = append(out, "["+l.Stream+"] "+l.Message)
		}
		return out
	}
	if err := json.Unmarshal(b, &one); err != nil {
		t.Errorf("log message data %s is neither a line nor a batch", b)
	}
	return []string{"[" + one.Stream + "] " + one.Message}
}

// inOrder checks that the notified lines are lines the guest printed, in
// its order (notes about lines left out apart; a long line may be cut).
func inOrder(t *testing.T, notified, all []string) {
	t.Helper()
	i := 0
	for _, line := range notified {
		if strings.HasSuffix(line, "the result has every line]") {
			continue
		}
		for i < len(all) && all[i] != line && (len(line) < 1000 || !strings.HasPrefix(all[i], line)) {
			i++
		}
		if i == len(all) {
			t.Errorf("notified line %.80q is not one the guest printed after the lines notified before it", line)
			return
		}
		i++
	}
}

// resultSize is the size of a tool result as JSON.
func resultSize(t *testing.T, res *sdk.CallToolResult) int {
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}
