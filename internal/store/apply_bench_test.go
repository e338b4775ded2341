package store_test

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/store"
)

// BenchmarkApplyRecord is what the recording writer pays to store one
// short synchronous execution as it ended (a warm hello world: its
// record, its start, one log line and its result) in SQLite, in batches
// of 1 (one commit each, as a lone execution) and of 4 (executions that
// end together share a commit). Reported per record: CPU time of the
// process (cpu-us/op) and wall time.
// Run: go test -run '^$' -bench ApplyRecord -benchtime 5000x ./internal/store
func BenchmarkApplyRecord(b *testing.B) {
	result := []byte(`{"id":"ex_x","success":true,"mode":"worker","stdout":"hi","stderr":"","logs":[{"level":"log","stream":"stdout","message":"hi","time":"2026-11-26T12:00:00Z"}],"response":{"status":200,"headers":{"content-type":"text/plain;charset=UTF-8"},"body":"ok","bodyEncoding":"utf8"},"truncated":false,"outbound":[],"warm":true,"durationMs":0.2}`)
	for _, batch := range []int{1, 4} {
		b.Run("batch"+strconv.Itoa(batch), func(b *testing.B) {
			s, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "executions.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			n := 0
			write := func() store.Write {
				n++
				id := "ex_bench" + strconv.Itoa(n)
				now := time.Now()
				return store.Write{
					Create: &store.Execution{ID: id, Caller: "anonymous", Status: store.Running, Owner: "gw", CreatedAt: now, StartedAt: now},
					Events: []store.Event{
						{Seq: 1, Type: "start", Data: []byte(`{"type":"start","id":"` + id + `"}`)},
						{Seq: 2, Type: "log", Data: []byte(`{"type":"log","level":"log","stream":"stdout","message":"hi","time":"2026-11-26T12:00:00Z"}`)},
						{Seq: 3, Type: "result", Data: append([]byte(`{"type":"result",`), result[1:]...)},
					},
					Finish: &store.Ending{Owner: "gw", Status: store.Finished, ResultJSON: result, At: now},
				}
			}
			cpu0 := cpu(b)
			for i := 0; b.Loop(); i++ {
				if i%batch != 0 {
					continue
				}
				ws := make([]store.Write, batch)
				for j := range ws {
					ws[j] = write()
				}
				if _, err := s.Apply(b.Context(), ws); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpu(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
