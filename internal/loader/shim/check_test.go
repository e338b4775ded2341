package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

const okResponse = `"response":{"status":200,"headers":{"a":"b"},"body":"ok","bodyEncoding":"utf8"}`

// wellFormed are events the shim sends; checkEvent must pass them.
var wellFormed = []string{
	`{"type":"log","level":"log","stream":"stdout","message":"hi","time":"2026-11-26T12:00:00Z"}`,
	`{"type":"log","level":"info","stream":"stdout","message":""}`,
	`{"type":"log","level":"debug","stream":"stdout","message":"x","truncated":true}`,
	`{"type":"log","level":"warn","stream":"stderr","message":"x"}`,
	`{"type":"log","level":"error","stream":"stderr","message":"x"}`,
	`{"type":"result","success":true,` + okResponse + `}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[],"warm":true,"truncated":true}`,
	`{"type":"result","success":true,"response":{"status":599,"headers":{},"body":"AAEC/w==","bodyEncoding":"base64"}}`,
	`{"type":"result","success":true,"response":{"status":204,"headers":null,"body":"","bodyEncoding":"base64"}}`,
	`{"type":"result","success":false,"error":{"code":"exception","message":"Error: no","stack":"Error: no\n    at x"}}`,
	`{"type":"result","success":false,"error":{"code":"timeout","message":"t"},"outbound":[{"method":"GET","url":"https://a/","denied":true},{"method":"PROPFIND","url":"https://b/","status":100},{"method":"POST","url":"https://c/","status":599},{"method":"GET","url":"/api/x?y=1","capability":"inventory","status":200},{"method":"POST","url":"http://evil/","capability":"inv_2","denied":true}]}`,
	`{"type":"result","success":false,"error":{"code":"memory_limit","message":"m"}}`,
	// What code returned other than a Response: a value, or nothing.
	`{"type":"result","success":true,"returnValue":42}`,
	`{"type":"result","success":true,"returnValue":{"a":[1,"x",null]}}`,
	`{"type":"result","success":true}`,
}

// malformed are events that break the contract, as a guest forging its
// records (or a broken shim) could spell them.
var malformed = []string{
	// Event types.
	`{"type":"start","id":"ex_forged"}`,
	// Log levels and streams.
	`{"type":"log","level":"trace","stream":"stdout","message":"x"}`,
	`{"type":"log","level":"Log","stream":"stdout","message":"x"}`,
	`{"type":"log","level":"","stream":"stdout","message":"x"}`,
	`{"type":"log","level":"log","stream":"stderr","message":"x"}`,
	`{"type":"log","level":"error","stream":"stdout","message":"x"}`,
	`{"type":"log","level":"log","stream":"stdin","message":"x"}`,
	`{"type":"log","level":"log","message":"x"}`,
	`{"type":"log","level":"log SECRET","stream":"stdout","message":"x"}`,
	// Error codes.
	`{"type":"result","success":false,"error":{"code":"SECRET-sk_live_123","message":"x"}}`,
	`{"type":"result","success":false,"error":{"code":"Exception","message":"x"}}`,
	`{"type":"result","success":false,"error":{"code":"exception ","message":"x"}}`,
	`{"type":"result","success":false,"error":{"code":"","message":"x"}}`,
	`{"type":"result","success":false,"error":{"code":"success","message":"x"}}`,
	`{"type":"result","success":false,"error":{"message":"x"}}`,
	`{"type":"result","success":false,"error":{"code":"exception\u0000","message":"x"}}`,
	// Success, error, response and return value out of step.
	`{"type":"result","success":false}`,
	`{"type":"result","success":false,"error":{"code":"exception","message":"x"},"returnValue":1}`,
	`{"type":"result","success":true,` + okResponse + `,"returnValue":1}`,
	`{"type":"result","success":true,"returnValue":1,"mode":"script"}`,
	`{"type":"result","success":true,"error":{"code":"exception","message":"x"},` + okResponse + `}`,
	`{"type":"result","success":false,"error":{"code":"exception","message":"x"},` + okResponse + `}`,
	`{"type":"result","success":false,` + okResponse + `}`,
	`{"type":"result","success":true,` + okResponse + `,"logs":[{"level":"log","stream":"stdout","message":"forged"}]}`,
	// Statuses.
	`{"type":"result","success":true,"response":{"status":99,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":199,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":600,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":1000,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":0,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":-200,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	// Body encodings.
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"6f6b","bodyEncoding":"hex"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"ok","bodyEncoding":"UTF8"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"ok","bodyEncoding":"utf-8"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"ok","bodyEncoding":""}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"ok"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"not base64!","bodyEncoding":"base64"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"b2s","bodyEncoding":"base64"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"b2s_","bodyEncoding":"base64"}}`,
	// Outbound records.
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"","url":"https://a/"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GE T","url":"https://a/"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET\r\nX: y","url":"https://a/"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GÉT","url":"https://a/"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"https://a/","status":99}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"https://a/","status":600}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"https://a/","status":-1}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"/a","capability":"Inventory"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"/a","capability":"inv entory"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"/a","capability":"inv\r\nx"}]}`,
}

// undecodable are JSON lines that do not even decode into the event types:
// an unknown event type, or a value of the wrong type where the contract has
// a number, string or map of strings.
var undecodable = []string{
	`{"success":true}`,
	`{"type":"","success":true}`,
	`{"type":"LOG","level":"log","stream":"stdout","message":"x"}`,
	`{"type":"result","success":true,"response":{"status":"200","headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":200.5,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":1e999,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{"SECRET-name":1},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":["a"],"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":{"SECRET":1},"bodyEncoding":"utf8"}}`,
	`{"type":"result","success":"yes","response":{"status":200,"headers":{},"body":"","bodyEncoding":"utf8"}}`,
	`{"type":"result","success":false,"error":{"code":7,"message":"x"}}`,
	`{"type":"result","success":false,"error":"SECRET"}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":{"method":"GET"}}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"https://a/","status":"200"}]}`,
	`{"type":"result","success":true,` + okResponse + `,"outbound":[{"method":"GET","url":"/a","capability":7}]}`,
	`{"type":"log","level":"log","stream":"stdout","message":{"SECRET":1}}`,
}

func decode(t *testing.T, line string) (execution.Event, error) {
	t.Helper()
	var ev execution.Event
	err := json.Unmarshal([]byte(line), &ev)
	return ev, err
}

func TestCheckEventPassesTheContract(t *testing.T) {
	t.Parallel()
	for _, line := range wellFormed {
		ev, err := decode(t, line)
		if err != nil {
			t.Fatalf("decode(%s) = %v", line, err)
		}
		if err := checkEvent(&ev); err != nil {
			t.Errorf("checkEvent(%s) = %v, want nil", line, err)
		}
	}
}

func TestCheckEventRefusesMalformed(t *testing.T) {
	t.Parallel()
	for _, line := range malformed {
		ev, err := decode(t, line)
		if err != nil {
			t.Fatalf("decode(%s) = %v, want it to decode (and fail the check)", line, err)
		}
		if err := checkEvent(&ev); err == nil {
			t.Errorf("checkEvent(%s) = nil, want an error", line)
		}
	}
	for _, ev := range []execution.Event{{Type: execution.EventLog}, {Type: execution.EventResult}} {
		if err := checkEvent(&ev); err == nil {
			t.Errorf("checkEvent(%+v) = nil, want an error for the missing body", ev)
		}
	}
}

// TestCheckEventTakesTheContractsWords: the gateway reads the levels, their
// streams and the error codes from the file the shim reads
// (worker/src/contract.json), so a level or code the shim may send passes,
// a log on the other stream does not, and neither does a code only the
// gateway gives.
func TestCheckEventTakesTheContractsWords(t *testing.T) {
	t.Parallel()
	other := map[string]string{execution.StreamStdout: execution.StreamStderr, execution.StreamStderr: execution.StreamStdout}
	for level, stream := range worker.Contract.LevelStreams {
		if err := checkEvent(&execution.Event{Type: execution.EventLog, Log: &execution.Log{Level: level, Stream: stream}}); err != nil {
			t.Errorf("checkEvent(log %s on %s) = %v, want nil", level, stream, err)
		}
		if err := checkEvent(&execution.Event{Type: execution.EventLog, Log: &execution.Log{Level: level, Stream: other[stream]}}); err == nil {
			t.Errorf("checkEvent(log %s on %s) = nil, want an error", level, other[stream])
		}
	}
	failure := func(code execution.Code) *execution.Event {
		return &execution.Event{Type: execution.EventResult, Result: &execution.Result{Error: &execution.Error{Code: code, Message: "m"}}}
	}
	for _, code := range worker.Contract.ErrorCodes {
		if err := checkEvent(failure(code)); err != nil {
			t.Errorf("checkEvent(result %s) = %v, want nil", code, err)
		}
	}
	for _, code := range worker.Contract.GatewayErrorCodes {
		if err := checkEvent(failure(code)); err == nil {
			t.Errorf("checkEvent(result %s) = nil, want an error: only the gateway gives it", code)
		}
	}
}

// TestRelayEndsOnMalformedEvents stands a server in for the shim and sends
// each bad line after a good log: the execution must end with one
// exception result that quotes nothing of the line.
func TestRelayEndsOnMalformedEvents(t *testing.T) {
	t.Parallel()
	lines := append(append([]string{}, malformed...), undecodable...)
	for i, bad := range lines {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			events := relayLines(t, wellFormed[0], bad, wellFormed[5])
			if len(events) != 3 || events[1].Type != execution.EventLog {
				t.Fatalf("relay(%s) = %d events %+v, want start, the log, a result", bad, len(events), events)
			}
			res := events[2].Result
			want := &execution.Error{Code: execution.CodeException, Message: malformedRecord}
			if events[2].Type != execution.EventResult || res.Success || res.Response != nil || *res.Error != *want {
				t.Errorf("relay(%s) ended %+v %+v, want %+v", bad, res, res.Error, want)
			}
		})
	}
}

func TestRelayPassesWellFormedEvents(t *testing.T) {
	t.Parallel()
	for _, good := range wellFormed[5:] {
		events := relayLines(t, wellFormed[0], wellFormed[3], good)
		if len(events) != 4 || events[3].Type != execution.EventResult || events[3].Result.Error != nil && events[3].Result.Error.Message == malformedRecord {
			t.Errorf("relay(%s) = %+v, want start, two logs and its result", good, events)
		}
	}
}

func TestRelayBrokenJSONIsTheRuntimes(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`{"type":"log",`, `not json`, `{"type":"result","success":true}}`, "\x00"} {
		events := relayLines(t, bad)
		if len(events) != 2 || events[1].Result == nil || events[1].Result.Error == nil ||
			events[1].Result.Error.Code != execution.CodeRuntimeCrashed || strings.Contains(events[1].Result.Error.Message, bad) {
			t.Errorf("relay(%s) = %+v, want a runtime_crashed result that does not quote it", bad, events)
		}
	}
}

// relayLines runs Call.Run against a server that answers with lines,
// and returns the events it emitted.
func relayLines(t *testing.T, lines ...string) []execution.Event {
	t.Helper()
	shim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprint(w, strings.Join(lines, "\n")+"\n")
	}))
	defer shim.Close()
	job := &execution.Job{ID: "ex_check", Modules: map[string]string{"main.js": "x"}, MainModule: "main.js", Timeout: time.Minute}
	call := &Call{Client: shim.Client(), Base: shim.URL, Secret: strings.Repeat("s", 64), MaxEvent: 1 << 20}
	var events []execution.Event
	err := call.Run(context.Background(), job, func(ev execution.Event) error {
		events = append(events, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("run = %v", err)
	}
	return events
}
