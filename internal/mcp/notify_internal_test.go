package mcp

import (
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

func line(i int) execution.Log {
	return execution.Log{Stream: "stdout", Level: "log", Message: "line " + strings.Repeat("x", i%7)}
}

// TestNotifierNeverWaits: while a notification waits for a slow client,
// the guest's lines are taken at once (add does not wait); the next
// notification carries what fits and counts the rest, and progress counts
// every line.
func TestNotifierNeverWaits(t *testing.T) {
	t.Parallel()
	sending := make(chan struct{})
	release := make(chan struct{})
	var got []batch
	n := startNotifier(func(b batch) {
		got = append(got, b)
		if len(got) == 1 {
			close(sending)
			<-release // the client does not read
		}
	}, 0)
	n.add(line(0))
	<-sending
	for i := range 100000 {
		n.add(line(i)) // would hang here if add waited for the client
	}
	close(release)
	n.finish()
	if len(got) != 2 {
		t.Fatalf("notifications = %d, want 2 (the one held, then the rest)", len(got))
	}
	b := got[1]
	cost := 0
	for _, l := range b.lines {
		cost += lineCost(l)
	}
	if cost > MaxNotifyBytes || len(b.lines)+b.skipped != 100000 || b.seen != 100001 {
		t.Errorf("second notification: %d lines (%d bytes), %d skipped, seen %d; want at most %d bytes, 100000 in all, seen 100001",
			len(b.lines), cost, b.skipped, b.seen, MaxNotifyBytes)
	}
	if !strings.Contains(b.text(), "more lines not sent as notifications") {
		t.Errorf("text %q..., want the count of lines left out", b.text()[:80])
	}
}

// TestNotifierBound: a call gets at most MaxNotifications, however many
// lines come, however they are spread.
func TestNotifierBound(t *testing.T) {
	t.Parallel()
	sent := make(chan batch)
	n := startNotifier(func(b batch) { sent <- b }, 0)
	count := 0
	for i := range MaxNotifications + 500 {
		n.add(line(i))
		if i < MaxNotifications {
			<-sent // each line its own notification: the client is waiting for it
			count++
		}
	}
	go func() {
		for range sent {
			count++
		}
	}()
	n.finish()
	close(sent)
	if count != MaxNotifications {
		t.Errorf("notifications = %d, want %d", count, MaxNotifications)
	}
}

// TestBatchLogMessage: a log message of one line is that line; of several,
// the lines and the count left out, at the most severe level among them.
func TestBatchLogMessage(t *testing.T) {
	t.Parallel()
	one := batch{lines: []execution.Log{{Stream: "stdout", Level: "log", Message: "a"}}, seen: 1}
	if d, ok := one.data().(execution.Log); !ok || d.Message != "a" || one.level() != "info" {
		t.Errorf("one line: data %v level %s, want the line at info", one.data(), one.level())
	}
	several := batch{lines: []execution.Log{{Stream: "stdout", Level: "debug", Message: "a"}, {Stream: "stderr", Level: "warn", Message: "b"}}, skipped: 3, seen: 5}
	if several.level() != "warning" || several.text() != "[stdout] a\n[stderr] b\n"+several.skippedNote() {
		t.Errorf("several: level %s text %q", several.level(), several.text())
	}
}
