package executions

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// TestRecordHoldOverBeforeFirstEvent: a synchronous execution whose first
// event comes after the hold is over (its start took longer than
// holdRecord, as under load) is visible running from that event on, not
// only once it has ended. The writer is not started, so h.writes shows
// what the recorder handed it and when.
func TestRecordHoldOverBeforeFirstEvent(t *testing.T) {
	st := openStore(t)
	s := New(Options{Store: st, Log: zerolog.Nop()})
	h := s.writer
	job := &execution.Job{ID: "ex_hold"}

	for _, tc := range []struct {
		name        string
		eventsFirst int // events before the hold ends
	}{
		{"hold over, then the start", 0},
		{"the start, then hold over", 1},
		{"start and a log, then hold over", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.recordSync(func(execution.Event) error { return nil }, job, "alice", "")
			r.timer.Stop() // the test ends the hold itself
			events := []execution.Event{
				{Type: execution.EventStart, ID: job.ID},
				{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "first", Time: time.Now()}},
				{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "second", Time: time.Now()}},
			}
			for _, ev := range events[:tc.eventsFirst] {
				_ = r.event(ev)
			}
			if n := len(h.writes); n != 0 {
				t.Fatalf("%d writes during the hold, want none", n)
			}
			r.release()
			for _, ev := range events[tc.eventsFirst:] {
				_ = r.event(ev)
			}
			var created, stored int
			for len(h.writes) > 0 {
				w := <-h.writes
				if w.create != nil {
					created++
				}
				if w.end != nil {
					t.Errorf("write ends the record while it runs")
				}
				stored += len(w.events)
			}
			if created != 1 || stored != len(events) {
				t.Errorf("running execution: %d creates, %d events written; want 1 and %d", created, stored, len(events))
			}
		})
	}
}
