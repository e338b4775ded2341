// Tests of streamed executions (NDJSON and SSE): live delivery, restarts,
// disconnects, shutdown. Over 400 lines because each stream shape is checked
// against openapi.yaml event by event; the stream reader helpers are here.
package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// arrival is one event of a stream and when the client read it.
type arrival struct {
	ev  execution.Event
	at  time.Time
	raw string // the event's JSON as sent
}

// eventStream reads NDJSON or SSE events from a streaming response.
type eventStream struct {
	t          testing.TB
	resp       *http.Response
	reader     *bufio.Reader
	sse        bool
	heartbeats int
}

// executeRequest is a POST /execute of body, as JSON, asking for accept.
func executeRequest(t testing.TB, base, accept string, body any) *http.Request {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/execute", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	return req
}

func openStream(t testing.TB, base, accept string, body any) *eventStream {
	t.Helper()
	resp, err := http.DefaultClient.Do(executeRequest(t, base, accept, body))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("POST /execute = %d %s, want 200", resp.StatusCode, data)
	}
	return &eventStream{t: t, resp: resp, reader: bufio.NewReader(resp.Body), sse: strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")}
}

// next returns the next event, or false at the end of the stream.
func (s *eventStream) next() (arrival, bool) {
	s.t.Helper()
	var typ, data string
	for {
		line, err := s.reader.ReadString('\n')
		if err != nil {
			if line != "" {
				s.t.Errorf("stream ended inside a line: %q", line)
			}
			return arrival{}, false
		}
		line = strings.TrimSuffix(line, "\n")
		if !s.sse {
			return s.decode("", line), true
		}
		switch {
		case strings.HasPrefix(line, ":"):
			s.heartbeats++
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "":
			if data != "" {
				return s.decode(typ, data), true
			}
		default:
			s.t.Errorf("unexpected SSE line %q", line)
		}
	}
}

func (s *eventStream) decode(sseType, data string) arrival {
	s.t.Helper()
	var ev execution.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		s.t.Fatalf("bad event %q: %v", data, err)
	}
	if s.sse && sseType != ev.Type {
		s.t.Errorf("SSE event: %s carries data of type %s", sseType, ev.Type)
	}
	return arrival{ev: ev, at: time.Now(), raw: data}
}

// all reads the rest of the stream and checks its shape: start first (if
// wantStart), exactly one result, last.
func (s *eventStream) all(wantStart bool) []arrival {
	s.t.Helper()
	defer s.resp.Body.Close()
	var got []arrival
	for {
		a, ok := s.next()
		if !ok {
			break
		}
		got = append(got, a)
	}
	checkShape(s.t, got, wantStart)
	return got
}

func checkShape(t testing.TB, got []arrival, wantStart bool) {
	t.Helper()
	if len(got) == 0 {
		t.Fatal("stream had no events")
	}
	if wantStart && (got[0].ev.Type != execution.EventStart || got[0].ev.ID == "") {
		t.Errorf("first event = %+v, want start with an id", got[0].ev)
	}
	results := 0
	for _, a := range got {
		if a.ev.Type == execution.EventResult {
			results++
		}
	}
	if results != 1 || got[len(got)-1].ev.Type != execution.EventResult {
		t.Fatalf("stream has %d results, last event %s; want exactly one result, last", results, got[len(got)-1].ev.Type)
	}
}

func resultOf(got []arrival) *execution.Result {
	return got[len(got)-1].ev.Result
}

func TestStreamDeliversLogsLive(t *testing.T) {
	t.Parallel()
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			t.Parallel()
			s := openStream(t, gatewayURL(t), accept, map[string]any{"code": `
export default {
  async fetch() {
    console.log("first");
    await new Promise((r) => setTimeout(r, 3000));
    console.warn("second");
    return new Response("done");
  },
};`})
			if ct := s.resp.Header.Get("Content-Type"); ct != accept {
				t.Errorf("Content-Type = %q, want %q", ct, accept)
			}
			got := s.all(true)
			var first, second time.Time
			for _, a := range got {
				if a.ev.Type != execution.EventLog {
					continue
				}
				switch a.ev.Log.Message {
				case "first":
					first = a.at
				case "second":
					second = a.at
				}
			}
			if first.IsZero() || second.IsZero() {
				t.Fatalf("events = %+v, want both logs", got)
			}
			// The guest sleeps 3 s between its logs: the first must have
			// reached the client while it slept, not with the second (a
			// wide bound: it may arrive 2 s late on a loaded machine).
			if gap := second.Sub(first); gap < time.Second {
				t.Errorf("first log arrived %v before the second, want about 3s (it was held back)", gap)
			}
			res := resultOf(got)
			if !res.Success || res.Response.Body != "done" || res.Stdout != "first" || res.Stderr != "second" || res.Logs != nil {
				t.Errorf("result = %+v, want success with stdout/stderr and no logs", res)
			}
			if res.ID != got[0].ev.ID || res.ID != s.resp.Header.Get("X-Execution-Id") {
				t.Errorf("result id %q, start id %q, header %q: want equal", res.ID, got[0].ev.ID, s.resp.Header.Get("X-Execution-Id"))
			}
		})
	}
}

func TestStreamEndsWithResultOnFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, code string
		timeoutMs  int
		want       execution.Code
	}{
		{"exception", `export default { async fetch() { console.log("about to throw"); throw new Error("bad"); } }`, 0, execution.CodeException},
		{"syntax error", `export default { fetch( { } }`, 0, execution.CodeSyntaxError},
		{"timeout", `export default { async fetch() { console.log("waiting"); await new Promise((r) => setTimeout(r, 60000)); } }`, 300, execution.CodeTimeout},
	}
	for _, tt := range tests {
		for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
			t.Run(tt.name+" "+accept, func(t *testing.T) {
				t.Parallel()
				body := map[string]any{"code": tt.code}
				if tt.timeoutMs > 0 {
					body["timeoutMs"] = tt.timeoutMs
				}
				got := openStream(t, gatewayURL(t), accept, body).all(true)
				res := resultOf(got)
				if res.Success || res.Error == nil || res.Error.Code != tt.want {
					t.Errorf("result = %+v, want error %s", res, tt.want)
				}
			})
		}
	}
}

func TestStreamMasksSecretsAndCutsLines(t *testing.T) {
	t.Parallel()
	got := openStream(t, gatewayURL(t), "application/x-ndjson", map[string]any{
		"code":    `export default { fetch(r, env) { console.log("key=" + env.KEY); console.log("y".repeat(100000)); return new Response(env.KEY); } }`,
		"secrets": map[string]string{"KEY": "s3cr3t-value"},
	}).all(true)
	var logs []*execution.Log
	for _, a := range got {
		if a.ev.Type == execution.EventLog {
			logs = append(logs, a.ev.Log)
		}
	}
	if len(logs) != 2 || logs[0].Message != "key=[REDACTED]" || !logs[1].Truncated || len(logs[1].Message) != testLimits.MaxLogLineBytes {
		t.Fatalf("logs = %d, first %q, second truncated %v", len(logs), logs[0].Message, len(logs) > 1 && logs[1].Truncated)
	}
	res := resultOf(got)
	if res.Response.Body != "[REDACTED]" || !res.Truncated || strings.Contains(res.Stdout, "s3cr3t") {
		t.Errorf("result body %q, truncated %v; want masked and truncated", res.Response.Body, res.Truncated)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	t.Parallel()
	s := openStream(t, gatewayURL(t), "text/event-stream", map[string]any{"code": `
export default { async fetch() { await new Promise((r) => setTimeout(r, 1000)); return new Response("quiet"); } }`})
	got := s.all(true)
	if !resultOf(got).Success {
		t.Fatalf("result = %+v", resultOf(got))
	}
	// The test server beats every 200 ms of silence; 1 s of silence gives
	// several. Require two for a wide margin.
	if s.heartbeats < 2 {
		t.Errorf("got %d heartbeats in 1s of silence, want at least 2", s.heartbeats)
	}
}

// dedicated starts a gateway with a runtime of its own, for tests that kill
// or block it.
func dedicated(t *testing.T) (string, *local.Pool, *loadertest.Buffer) {
	t.Helper()
	logs := &loadertest.Buffer{}
	log := zerolog.New(logs)
	backend := loadertest.StartLocal(t, log, loadertest.Processes(1))
	srv := httptest.NewServer(apitest.Serve(t, log, backend, apitest.Gateway{
		Options: api.Options{MaxRequestBytes: testMaxBody},
		Limits:  testLimits,
		Now:     func() time.Time { return testNow },
	}))
	t.Cleanup(func() {
		srv.Close()
		backend.Close()
	})
	return srv.URL, backend, logs
}

// TestStreamRestartsAfterRuntimeCrash: an execution whose runtime process
// dies (of no doing of its own) runs again; a stream gets one start, a
// restart event voiding the log it had, then the new run's log and result,
// every event as openapi.yaml documents it; the JSON answer holds only the
// new run's logs.
func TestStreamRestartsAfterRuntimeCrash(t *testing.T) {
	t.Parallel()
	schema := streamEventSchema(t)
	const code = `
export default { async fetch() { console.log("working"); await new Promise((r) => setTimeout(r, 1000)); return new Response("done"); } }`
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			t.Parallel()
			base, backend, _ := dedicated(t)
			s := openStream(t, base, accept, map[string]any{"code": code})
			var got []arrival
			var types []string
			killed := false
			for {
				a, ok := s.next()
				if !ok {
					break
				}
				got = append(got, a)
				types = append(types, a.ev.Type)
				var value any
				if err := json.Unmarshal([]byte(a.raw), &value); err != nil {
					t.Fatal(err)
				}
				if err := schema.VisitJSON(value); err != nil {
					t.Errorf("event %s does not match StreamEvent: %v", a.raw, err)
				}
				if a.ev.Type == execution.EventLog && !killed {
					killed = true
					if err := syscall.Kill(backend.PIDs()[0], syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.resp.Body.Close()
			checkShape(t, got, true)
			if strings.Join(types, ",") != "start,log,restart,log,result" {
				t.Errorf("events = %v, want start,log,restart,log,result", types)
			}
			if res := resultOf(got); !res.Success || res.Stdout != "working" {
				t.Errorf("result = %+v, want success with the new run's stdout only", res)
			}
		})
	}
}

func TestStreamClientDisconnectCancelsExecution(t *testing.T) {
	t.Parallel()
	base, backend, logs := dedicated(t)
	// After its first log the guest sleeps, then would spin for many seconds,
	// blocking its runtime process. If hanging up cancels it, the timer never
	// fires and the runtime stays free for the next execution.
	s := openStream(t, base, "application/x-ndjson", map[string]any{"code": `
export default {
  async fetch() {
    console.log("first");
    await new Promise((r) => setTimeout(r, 300));
    let x = 0;
    for (let i = 0; i < 2e10; i++) x += i;
    console.log("late", x);
    return new Response("never");
  },
};`})
	id := s.resp.Header.Get("X-Execution-Id")
	for {
		a, ok := s.next()
		if !ok {
			t.Fatal("stream ended before the first log")
		}
		if a.ev.Type == execution.EventLog {
			break
		}
	}
	pid := backend.PIDs()[0]
	s.resp.Body.Close() // hang up

	// The next execution waits 1 s, so it is still waiting when the hung-up
	// guest's 300 ms timer would fire (both started after its log): if the
	// guest ran on, its loop would block the process, the next execution
	// would not end until the process was killed, and it would run again on
	// a new one. No sleep is needed to order them.
	res := executeAt(t, base, map[string]any{"code": `export default { async fetch() {
		await new Promise((r) => setTimeout(r, 1000));
		return new Response("free");
	} }`})
	if !res.Success || res.Response.Body != "free" {
		t.Errorf("next execution = %+v, want success (the cancelled guest must not run on)", res)
	}
	if pids := backend.PIDs(); len(pids) != 1 || pids[0] != pid {
		t.Errorf("PIDs = %v, want %d still serving: the cancelled guest must not have blocked it", pids, pid)
	}
	// The log line signals nothing: poll for it.
	cancelled := func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, fmt.Sprintf(`"execution_id":%q`, id)) && strings.Contains(line, `"message":"client went away; execution cancelled"`) {
				return true
			}
		}
		return false
	}
	if !testwait.Until(5*time.Second, cancelled) {
		t.Fatalf("gateway did not log the cancellation of %s:\n%s", id, logs.String())
	}
	if len(backend.PIDs()) == 0 {
		t.Error("runtime not running after the cancelled execution")
	}
}

func executeAt(t *testing.T, base string, body any) *execution.Result {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res execution.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return &res
}
