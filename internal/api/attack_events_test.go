package api_test

import (
	"bufio"
	"fmt"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api"
)

// attackLogBytes is the console budget of the flood tests' gateway.
const attackLogBytes = 2000

// TestAttackEmptyLinesFlood: a guest's console output is bounded by
// execution.max_log_bytes, but a line with an empty message cost nothing
// against it, so a loop of empty console calls made a million log events:
// each one sent to the client, stored as an event row, and a newline in
// stdout. Every line must count (its newline), in every spelling of an
// empty line.
func TestAttackEmptyLinesFlood(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t, func(o *api.Options) { o.Limits.MaxLogBytes = attackLogBytes })
	for _, call := range []string{`console.log()`, `console.log("")`, `console.error("")`, `console.info(...[])`, `console.warn("%s", "")`, `console.debug(String())`} {
		t.Run(call, func(t *testing.T) {
			code := guest(fmt.Sprintf(`for (let i = 0; i < 50000; i++) %s;`, call))
			res := f.run(t, f.alice, map[string]any{"code": code})
			if n := len(res.Logs); n > attackLogBytes {
				t.Errorf("result holds %d log lines, want at most %d (the budget)", n, attackLogBytes)
			}
			if n := len(res.Stdout) + len(res.Stderr); n > attackLogBytes {
				t.Errorf("stdout and stderr hold %d bytes, want at most %d", n, attackLogBytes)
			}
			if !res.Truncated {
				t.Error("result not marked truncated")
			}
			f.await(t, f.alice, res.ID, "finished")
			body := f.openEvents(t, f.alice, res.ID, "application/x-ndjson", "")
			defer body.Close()
			events := 0
			for sc := bufio.NewScanner(body); sc.Scan(); {
				events++
			}
			if events > attackLogBytes+2 {
				t.Errorf("the record holds %d events, want at most %d", events, attackLogBytes+2)
			}
		})
	}
}
