package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// TestRestartVoidsEarlierLogs: after a restart event the JSON answer and the
// result's stdout, stderr and log budget hold only the new run's logs.
func TestRestartVoidsEarlierLogs(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	out := newSink(rec, httptest.NewRequest("POST", "/execute", nil), mediaJSON, Options{})
	// Room for "old-out" and "old", each costing its bytes and a line's cost.
	col := newCollector(&execution.Job{ID: "ex_1"}, 0, 2*worker.Caps.LogLineCost+10)
	at := time.Unix(0, 0).UTC()
	events := []execution.Event{
		{Type: execution.EventStart, ID: "ex_1"},
		{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "old-out", Time: at}},
		{Type: execution.EventLog, Log: &execution.Log{Level: "warn", Stream: execution.StreamStderr, Message: "old", Time: at}},
		{Type: execution.EventRestart, Reason: string(execution.CodeRuntimeCrashed)},
		{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "new-out", Time: at}},
		{Type: execution.EventResult, Result: &execution.Result{Success: true}},
	}
	for _, ev := range events {
		switch ev.Type {
		case execution.EventLog:
			if !col.log(ev.Log) {
				continue
			}
		case execution.EventRestart:
			col.reset()
		case execution.EventResult:
			col.result(ev.Result)
		}
		if err := out.event(ev); err != nil {
			t.Fatal(err)
		}
	}
	out.close()
	var res execution.Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	// The budget was spent on "old-out" and "old"; after the
	// restart "new-out" fits again, untruncated.
	if res.Stdout != "new-out" || res.Stderr != "" || len(res.Logs) != 1 || res.Logs[0].Message != "new-out" || res.Truncated {
		t.Errorf("result = stdout %q, stderr %q, logs %v, truncated %v; want only the new run's log", res.Stdout, res.Stderr, res.Logs, res.Truncated)
	}
}
