package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// streamedEvent is one event read from GET /executions/{id}/events.
type streamedEvent struct {
	id   int64
	typ  string
	data string
}

// readEvents reads up to max events (0: all) from an SSE or NDJSON body.
func readEvents(t *testing.T, body io.Reader, sse bool, max int) []streamedEvent {
	t.Helper()
	var out []streamedEvent
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur streamedEvent
	for sc.Scan() && (max == 0 || len(out) < max) {
		line := sc.Text()
		if !sse {
			var ev struct {
				EventID int64  `json:"eventId"`
				Type    string `json:"type"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.EventID == 0 {
				t.Fatalf("NDJSON line %q: %v, want an event with eventId", line, err)
			}
			out = append(out, streamedEvent{ev.EventID, ev.Type, line})
			continue
		}
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id, _ = strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
		case strings.HasPrefix(line, "event: "):
			cur.typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		case line == "" && cur.typ != "":
			out = append(out, cur)
			cur = streamedEvent{}
		}
	}
	return out
}

// TestEventsResume drops an execution's event stream after n events while
// it runs and resumes it (SSE Last-Event-ID, NDJSON ?after=): the events
// after n come exactly once, in order, up to the result.
func TestEventsResume(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{Workers: 2})
	for _, tt := range []struct {
		name   string
		accept string
		sse    bool
		n      int
	}{
		{"sse", "text/event-stream", true, 5},
		{"ndjson", "application/x-ndjson", false, 7},
		{"sse from the first", "text/event-stream", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := g.submit(t, g.alice, map[string]any{"code": guest(`
for (let i = 1; i <= 20; i++) {
  console.log("line " + i);
  await new Promise((r) => setTimeout(r, 15));
}`)})
			first := g.openEvents(t, g.alice, id, tt.accept, "")
			got := readEvents(t, first, tt.sse, tt.n)
			first.Close() // the client drops mid-execution
			if len(got) != tt.n {
				t.Fatalf("read %d events before dropping, want %d", len(got), tt.n)
			}
			resume := "?after=" + strconv.Itoa(tt.n)
			if tt.sse {
				resume = "#" + strconv.Itoa(tt.n)
			}
			second := g.openEvents(t, g.alice, id, tt.accept, resume)
			defer second.Close()
			got = append(got, readEvents(t, second, tt.sse, 0)...)
			// start, 20 logs, result: ids 1…22, each once, in order.
			if len(got) != 22 {
				t.Fatalf("%d events in all, want 22: %v", len(got), got)
			}
			for i, ev := range got {
				want := "log"
				switch i {
				case 0:
					want = execution.EventStart
				case 21:
					want = execution.EventResult
				}
				if ev.id != int64(i+1) || ev.typ != want {
					t.Errorf("event %d = id %d %s, want id %d %s", i, ev.id, ev.typ, i+1, want)
				}
				if want == "log" && !strings.Contains(ev.data, fmt.Sprintf(`"line %d"`, i)) {
					t.Errorf("event %d = %s, want line %d", i, ev.data, i)
				}
			}
		})
	}
}

// TestEventsOfSyncExecution follows a synchronous execution's record from
// another connection while POST /execute streams it.
func TestEventsOfSyncExecution(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	resp, id := g.streamExecute(t, guest(`for (let i = 0; i < 10; i++) { console.log("s" + i); await new Promise((r) => setTimeout(r, 20)); }`))
	defer resp.Body.Close()
	direct := readEvents(t, withEventIDs(resp.Body), false, 2) // start and the first log: it runs
	if len(direct) != 2 {
		t.Fatalf("POST /execute stream: %d events, want 2", len(direct))
	}
	g.await(t, g.alice, id, execution.StatusRunning)
	events := g.openEvents(t, g.alice, id, "text/event-stream", "")
	defer events.Close()
	got := readEvents(t, events, true, 0)
	if len(got) != 12 || got[0].typ != execution.EventStart || got[11].typ != execution.EventResult {
		t.Errorf("recorded events = %v, want start, 10 logs, result", got)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Error(err)
	}
}

// withEventIDs numbers the lines of a POST /execute NDJSON stream (which
// has no event ids) so that readEvents can read them.
func withEventIDs(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			n++
			line := strings.Replace(sc.Text(), "{", fmt.Sprintf(`{"eventId":%d,`, n), 1)
			if _, err := io.WriteString(pw, line+"\n"); err != nil {
				return
			}
		}
		pw.Close()
	}()
	return pr
}
