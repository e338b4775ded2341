//lint:file-ignore SA1019 MCP logging is deprecated as of protocol 2026-07-28 but works for at least twelve months; clients that send no progress token still get console lines as log messages.

package mcp

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
)

// How a call's console lines reach its client while the guest runs: at
// most one notification per NotifyInterval, each carrying the lines
// written since the one before (up to about MaxNotifyBytes of them, at
// least one; the others are counted, not sent), and at most
// MaxNotifications in all. The result carries every line whatever was sent. Taking a line never
// waits for the client: a guest printing 100,000 lines costs its client a
// few dozen notifications, and a slow client does not slow the execution
// (which would end it, as a slow /execute client's, with buffer_full).
const (
	NotifyInterval   = 100 * time.Millisecond
	MaxNotifyBytes   = 16 << 10
	MaxNotifications = 1000
)

// batch is the lines one notification carries.
type batch struct {
	lines   []execution.Log
	skipped int // lines written since the last notification and not in it
	seen    int // lines written so far, these included
}

// notifier paces a call's console lines into notifications. add never
// blocks; a goroutine sends, at most one notification per NotifyInterval;
// finish sends what is left and waits for it.
type notifier struct {
	send     func(batch) // sends one notification; may wait for the client
	interval time.Duration

	mu      sync.Mutex
	pending batch
	bytes   int // pending's lineCost
	sent    int
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newNotifier(send func(batch)) *notifier {
	return startNotifier(send, NotifyInterval)
}

func startNotifier(send func(batch), interval time.Duration) *notifier {
	n := &notifier{send: send, interval: interval, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go n.run()
	return n
}

// add takes one console line.
func (n *notifier) add(l execution.Log) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending.seen++
	if n.sent >= MaxNotifications {
		return
	}
	if len(n.pending.lines) > 0 && n.bytes+lineCost(l) > MaxNotifyBytes {
		n.pending.skipped++
		return
	}
	n.pending.lines = append(n.pending.lines, l)
	n.bytes += lineCost(l)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// lineCost is what a line adds to a notification: its message and room
// for its stream, level and time (an empty line is not free).
func lineCost(l execution.Log) int {
	return len(l.Message) + 64
}

// take returns the pending lines as a batch, if there are any and the
// call may send another notification.
func (n *notifier) take() (batch, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending.lines) == 0 || n.sent >= MaxNotifications {
		return batch{}, false
	}
	b := n.pending
	n.pending = batch{seen: b.seen}
	n.bytes = 0
	n.sent++
	return b, true
}

// run sends the pending lines whenever there are some, then waits an
// interval before it sends again.
func (n *notifier) run() {
	defer close(n.done)
	for {
		select {
		case <-n.wake:
		case <-n.stop:
			return
		}
		if b, ok := n.take(); ok {
			n.send(b)
			select {
			case <-time.After(n.interval):
			case <-n.stop:
				return
			}
		}
	}
}

// finish stops the pacing and sends the lines still pending, before the
// call's result.
func (n *notifier) finish() {
	close(n.stop)
	<-n.done
	if b, ok := n.take(); ok {
		n.send(b)
	}
}

// sender returns how a call's batches reach its client: as progress
// notifications when the call has a progress token, else as log messages
// (which the SDK sends only once the client has set a log level).
func sender(ctx context.Context, req *sdk.CallToolRequest) func(batch) {
	token := req.Params.GetProgressToken()
	if token != nil {
		return func(b batch) {
			_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(b.seen),
				Message:       b.text(),
			})
		}
	}
	return func(b batch) {
		_ = req.Session.Log(ctx, &sdk.LoggingMessageParams{Level: b.level(), Logger: "guest", Data: b.data()})
	}
}

// text is a progress notification's message: each line as "[stream]
// message", then how many were left out.
func (b batch) text() string {
	var s strings.Builder
	for i, l := range b.lines {
		if i > 0 {
			s.WriteByte('\n')
		}
		s.WriteString("[" + l.Stream + "] " + l.Message)
	}
	if b.skipped > 0 {
		s.WriteString("\n" + b.skippedNote())
	}
	return s.String()
}

func (b batch) skippedNote() string {
	return "[" + strconv.Itoa(b.skipped) + " more lines not sent as notifications; the result has every line]"
}

// data is a log message's data: one line as it is, or several as
// {"lines": [...], "skipped": n}.
func (b batch) data() any {
	if len(b.lines) == 1 && b.skipped == 0 {
		return b.lines[0]
	}
	return struct {
		Lines   []execution.Log `json:"lines"`
		Skipped int             `json:"skipped,omitempty"`
	}{b.lines, b.skipped}
}

// level is a log message's level: the most severe of its lines.
func (b batch) level() sdk.LoggingLevel {
	rank := map[sdk.LoggingLevel]int{"debug": 0, "info": 1, "warning": 2, "error": 3}
	best := sdk.LoggingLevel("debug")
	for _, l := range b.lines {
		if lv := logLevel(l.Level); rank[lv] > rank[best] {
			best = lv
		}
	}
	return best
}
