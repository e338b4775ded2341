package executions

import (
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// BenchmarkRecordHotPath measures what recording adds to the request's own
// goroutine for a small execution (start, one log, result): encoding the
// events and handing them to the writer, which stores them meanwhile on its
// own goroutine (SQLite). The writer starts after the loop (at most 2,000
// iterations fit its queue), so ns/op is the hot path alone; records/s is
// then how fast the writer stores what was queued. Run:
// go test -run '^$' -bench RecordHotPath -benchtime 2000x -benchmem ./internal/api
func BenchmarkRecordHotPath(b *testing.B) {
	st := openStore(b)
	s := New(Options{Store: st, Log: zerolog.Nop()})
	h := s.writer
	log := execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "hi", Time: time.Now()}
	res := execution.Result{Success: true, Stdout: "hi", Outbound: []execution.Outgoing{}}
	seq := 0
	for b.Loop() {
		job := &execution.Job{ID: fmt.Sprintf("ex_%d", seq)}
		seq++
		r := s.recordSync(func(execution.Event) error { return nil }, job, "bench", "")
		r.sync = false // the hand-over alone: a real answer then waits for its commit
		l := log
		res.ID = job.ID
		_ = r.event(execution.Event{Type: execution.EventStart, ID: job.ID})
		_ = r.event(execution.Event{Type: execution.EventLog, Log: &l})
		_ = r.event(execution.Event{Type: execution.EventResult, Result: &res})
		r.end()
	}
	b.StopTimer()
	began := time.Now()
	go h.run()
	h.flush()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "records/s")
	close(h.stop)
	<-h.written
}
