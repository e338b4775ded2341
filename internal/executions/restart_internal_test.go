package executions

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// replayBackend is a runtime that emits the events it is given: the seam
// where a unit test of the service decides what a run did.
type replayBackend struct{ events []execution.Event }

func (b replayBackend) Execute(_ context.Context, _ *execution.Job, emit func(execution.Event) error) error {
	for _, ev := range b.events {
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}
func (replayBackend) Ready(context.Context) error { return nil }
func (replayBackend) Drain()                      {}
func (replayBackend) Close() error                { return nil }

// TestRestartVoidsEarlierLogs: after a restart event the result (as
// answered whole, and as recorded) holds only the new run's logs, and the
// new run has the whole log budget again.
func TestRestartVoidsEarlierLogs(t *testing.T) {
	t.Parallel()
	at := time.Unix(0, 0).UTC()
	backend := replayBackend{events: []execution.Event{
		{Type: execution.EventStart, ID: "ex_1"},
		{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "old-out", Time: at}},
		{Type: execution.EventLog, Log: &execution.Log{Level: "warn", Stream: execution.StreamStderr, Message: "old", Time: at}},
		{Type: execution.EventRestart, Reason: string(execution.CodeRuntimeCrashed)},
		{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "new-out", Time: at}},
		{Type: execution.EventResult, Result: &execution.Result{Success: true}},
	}}
	st := openStore(t)
	// Room for "old-out" and "old", each costing its bytes and a line's cost.
	s := New(Options{Backend: backend, Store: st, Limits: Limits{
		CompatibilityDate: "2026-11-16", DefaultTimeout: time.Second, MaxTimeout: time.Second, MaxResponseBytes: 1 << 10,
		MaxLogLineBytes: 1 << 10, MaxLogBytes: 2*worker.Caps.LogLineCost + 10, MaxCodeBytes: 1 << 10, MaxModules: 1, MaxEnvBytes: 1 << 10,
	}, Now: func() time.Time { return time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) }})
	s.Start()
	defer s.Close(t.Context())
	var answered []byte
	body := map[string]json.RawMessage{"code": json.RawMessage(`"export default { fetch() { return new Response('') } }"`)}
	err := s.Run(t.Context(), execution.Caller{Name: "a"}, execution.RunRequest{ID: "ex_1", Body: body}, func(ev execution.Event) error {
		if ev.Type == execution.EventResult {
			answered = ev.ResultJSON
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var res execution.Result
	if err := json.Unmarshal(answered, &res); err != nil {
		t.Fatalf("the result as answered: %v: %s", err, answered)
	}
	// The budget was spent on "old-out" and "old"; after the restart
	// "new-out" fits again, untruncated.
	if res.Stdout != "new-out" || res.Stderr != "" || len(res.Logs) != 1 || res.Logs[0].Message != "new-out" || res.Truncated {
		t.Errorf("result = stdout %q, stderr %q, logs %v, truncated %v; want only the new run's log", res.Stdout, res.Stderr, res.Logs, res.Truncated)
	}
}
