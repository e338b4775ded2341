package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/metrics"
)

// logEntries decodes a zerolog buffer into its messages.
func logEntries(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var msgs []string
	for line := range strings.Lines(buf.String()) {
		var e struct{ Message string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msgs = append(msgs, e.Message)
	}
	return msgs
}

// TestLineLoggerFloodIsBounded writes 10,000 lines, a millisecond apart on
// a fake clock: the log gets at most the burst plus the rate over the time
// they took, and the dropped-lines counter gets every other line.
func TestLineLoggerFloodIsBounded(t *testing.T) {
	t.Parallel()
	const lines = 10000
	var buf bytes.Buffer
	m := metrics.New()
	var seen int
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := start
	l := &lineLogger{log: zerolog.New(&buf), dropped: m.RuntimeLogLinesDropped, onLine: func([]byte) { seen++ },
		now: func() time.Time { return clock }}
	for i := range lines {
		fmt.Fprintf(l, "workerd/io/worker.c++:123: warning: denied fetch %d\n", i)
		clock = clock.Add(time.Millisecond)
	}
	elapsed := clock.Sub(start)
	logged, summarized := 0, 0
	for _, msg := range logEntries(t, &buf) {
		var n int
		if _, err := fmt.Sscanf(msg, "suppressed %d runtime log lines", &n); err == nil {
			summarized += n
		} else {
			logged++
		}
	}
	if bound := logBurst + int(elapsed.Seconds()*logRate) + 1; logged > bound || logged < logBurst {
		t.Errorf("logged %d of %d lines in %v, want between %d and %d", logged, lines, elapsed, logBurst, bound)
	}
	var counter dto.Metric
	if err := m.RuntimeLogDropped.Write(&counter); err != nil {
		t.Fatal(err)
	}
	if dropped := int(counter.GetCounter().GetValue()); dropped != lines-logged || summarized+l.suppressed != dropped {
		t.Errorf("dropped counter = %d, summaries %d + pending %d; want both %d, the lines not logged", dropped, summarized, l.suppressed, lines-logged)
	}
	if seen != lines {
		t.Errorf("onLine saw %d lines, want all %d (it watches for out-of-memory)", seen, lines)
	}
}

// TestLineLoggerSummarizesWhenItResumes drives the bucket with a fake
// clock: a burst, silence, then one summary line before the next line.
func TestLineLoggerSummarizesWhenItResumes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var dropped int
	l := &lineLogger{
		log:     zerolog.New(&buf),
		now:     func() time.Time { return now },
		dropped: func(n int) { dropped += n },
		mask:    func(s string) string { return strings.ReplaceAll(s, "hunter2", "[REDACTED]") },
	}
	for i := range 1000 {
		fmt.Fprintf(l, "line %d hunter2\n", i)
	}
	if got := logEntries(t, &buf); len(got) != logBurst || dropped != 1000-logBurst || got[0] != "line 0 [REDACTED]" {
		t.Fatalf("frozen clock: logged %d (first %q), dropped %d; want %d masked lines and %d dropped", len(got), got[0], dropped, logBurst, 1000-logBurst)
	}
	buf.Reset()
	now = now.Add(time.Second) // refills logRate tokens
	for i := range 2 * logRate {
		fmt.Fprintf(l, "later %d\n", i)
	}
	got := logEntries(t, &buf)
	want := fmt.Sprintf("suppressed %d runtime log lines", 1000-logBurst)
	if len(got) != logRate+1 || got[0] != want || got[1] != "later 0" {
		t.Errorf("after a second: logged %q, want %q then %d lines", got, want, logRate)
	}
	if dropped != 1000-logBurst+logRate {
		t.Errorf("dropped = %d, want %d", dropped, 1000-logBurst+logRate)
	}
}

// TestActiveSecretsCountsExecutions masks a secret while any execution that
// has it runs, in its escaped spellings too.
func TestActiveSecretsCountsExecutions(t *testing.T) {
	t.Parallel()
	var a activeSecrets
	const pem = "-----BEGIN KEY-----\nAbc+/=\n-----END KEY-----"
	in := `uncaught "-----BEGIN KEY-----\nAbc+/=\n-----END KEY-----" at https://x/?k=-----BEGIN%20KEY-----Abc+/=-----END%20KEY-----`
	if got := a.mask(in); got != in {
		t.Fatalf("mask with none active = %q, want unchanged", got)
	}
	a.add([]string{pem, "other"})
	a.add([]string{pem})
	want := `uncaught "[REDACTED]" at https://x/?k=[REDACTED]`
	if got := a.mask(in); got != want {
		t.Errorf("mask = %q, want %q", got, want)
	}
	a.remove([]string{pem, "other"})
	if got := a.mask(in + " other"); got != want+" other" {
		t.Errorf("mask after one execution ended = %q, want the other execution's secret still masked and 'other' not", got)
	}
	a.remove([]string{pem})
	if got := a.mask(in); got != in {
		t.Errorf("mask after both ended = %q, want unchanged", got)
	}
}

// TestActiveSecretsConcurrent runs add, remove and mask at once (for -race).
func TestActiveSecretsConcurrent(t *testing.T) {
	t.Parallel()
	var a activeSecrets
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := []string{fmt.Sprintf("secret-%d", i)}
			for range 200 {
				a.add(s)
				if got := a.mask("x " + s[0]); got != "x [REDACTED]" {
					t.Errorf("mask = %q while its execution runs", got)
					return
				}
				a.remove(s)
			}
		})
	}
	wg.Wait()
}
