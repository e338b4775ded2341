package api_test

import (
	"encoding/json"
	"fmt"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"io"
	"net/http"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// attackLogBytes is the console budget of the flood tests' gateway.
const attackLogBytes = 20000

// TestAttackEmptyLinesFlood: a guest's console output is bounded by
// execution.max_log_bytes, but a line with an empty (or one-byte) message
// cost only its newline against it, so 2,000,000 empty console calls kept
// 1,048,576 log events: an 87 MB result and 187 MB stored. Every line must
// cost a fixed amount besides its bytes, in every spelling of a short line,
// so the result, the stored record and every stream stay proportional to
// the budget.
func TestAttackEmptyLinesFlood(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, func(o *apitest.Gateway) { o.Limits.MaxLogBytes = attackLogBytes })
	maxLines := attackLogBytes / worker.Caps.LogLineCost
	// What one kept line may cost at most in any of the outputs (its record
	// in JSON, its event in NDJSON, its stdout line), plus a fixed part.
	maxBytes := 4*attackLogBytes + 4096
	calls := []string{
		`console.log()`, `console.log("")`, `console.error("")`, `console.info(...[])`, `console.warn("%s", "")`,
		`console.debug(String())`, `console.log("\n")`, `console.log(" ")`, `console.log("%c", "color: red")`,
		`console.log(...[""])`, `console.log(0)`, `console.trace === undefined || console.log("\t")`,
	}
	for _, call := range calls {
		t.Run(call, func(t *testing.T) {
			t.Parallel()
			code := guest(fmt.Sprintf(`for (let i = 0; i < 200000; i++) %s;`, call))
			resp, answer := f.call(t, f.alice, http.MethodPost, "/execute", map[string]any{"code": code})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /execute = %d %s", resp.StatusCode, answer)
			}
			var res execution.Result
			if err := json.Unmarshal(answer, &res); err != nil {
				t.Fatal(err)
			}
			if n := len(res.Logs); n > maxLines {
				t.Errorf("result holds %d log lines, want at most %d (the budget over the cost of a line)", n, maxLines)
			}
			if len(answer) > maxBytes {
				t.Errorf("the answer is %d bytes, want at most %d", len(answer), maxBytes)
			}
			if !res.Truncated {
				t.Error("result not marked truncated")
			}
			f.await(t, f.alice, res.ID, "finished")
			_, record := f.call(t, f.alice, http.MethodGet, "/executions/"+res.ID, nil)
			if len(record) > maxBytes {
				t.Errorf("GET /executions/{id} is %d bytes, want at most %d", len(record), maxBytes)
			}
			body := f.openEvents(t, f.alice, res.ID, "application/x-ndjson", "")
			defer body.Close()
			events, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) > maxBytes {
				t.Errorf("the event stream is %d bytes, want at most %d", len(events), maxBytes)
			}
		})
	}
}
