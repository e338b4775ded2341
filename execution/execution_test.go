package execution_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

func TestEventJSONRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ev   execution.Event
		json string
	}{
		{execution.Event{Type: "start", ID: "ex_1"}, `{"type":"start","id":"ex_1"}`},
		{execution.Event{Type: "restart", Reason: "runtime_crashed"}, `{"type":"restart","reason":"runtime_crashed"}`},
		{execution.Event{Type: "log", Log: &execution.Log{Level: "warn", Stream: "stderr", Message: "m", Time: at}},
			`{"type":"log","level":"warn","stream":"stderr","message":"m","time":"2026-11-26T12:00:00Z"}`},
		{execution.Event{Type: "result", Result: &execution.Result{ID: "ex_1", Success: false, Error: &execution.Error{Code: execution.CodeTimeout, Message: "late"}, Outbound: []execution.Outgoing{}}},
			`{"type":"result","id":"ex_1","success":false,"stdout":"","stderr":"","error":{"code":"timeout","message":"late"},"truncated":false,"outbound":[],"warm":false,"durationMs":0}`},
	}
	for _, tt := range tests {
		data, err := json.Marshal(tt.ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != tt.json {
			t.Errorf("Marshal(%+v) = %s, want %s", tt.ev, data, tt.json)
		}
		var back execution.Event
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, tt.ev) {
			t.Errorf("Unmarshal(%s) = %+v, want %+v", data, back, tt.ev)
		}
	}
	if _, err := json.Marshal(execution.Event{Type: "bogus"}); err == nil {
		t.Error("Marshal of an unknown event type succeeded")
	}
	var ev execution.Event
	if err := json.Unmarshal([]byte(`{"type":"bogus"}`), &ev); err == nil {
		t.Error("Unmarshal of an unknown event type succeeded")
	}
}

func TestOutboundJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want execution.Outbound
		ok   bool
	}{
		{`false`, execution.Outbound{}, true},
		{`true`, execution.Outbound{All: true}, true},
		{`["a.com","*.b.com"]`, execution.Outbound{Hosts: []string{"a.com", "*.b.com"}}, true},
		{`"a.com"`, execution.Outbound{}, false},
		{`1`, execution.Outbound{}, false},
	}
	for _, tt := range tests {
		var got execution.Outbound
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err == nil) != tt.ok || (tt.ok && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			data, _ := json.Marshal(got)
			if string(data) != tt.in {
				t.Errorf("Marshal(%+v) = %s, want %s", got, data, tt.in)
			}
		}
	}
	req := execution.Request{Code: "x"}
	data, _ := json.Marshal(req)
	if string(data) != `{"code":"x"}` {
		t.Errorf("Marshal(Request{Code}) = %s, want only code (allowOutbound false omitted)", data)
	}
}
