package execution

import (
	"reflect"
	"testing"
)

// FuzzEventUnmarshal checks that the one-pass read of a log event gives
// what the two-pass read by type gives, for any input: the same event, or
// an error for both. The seeds are the ways a line starting like a log
// event could be something else. Run longer with
// go test -fuzz FuzzEventUnmarshal ./execution
func FuzzEventUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"type":"log","level":"log","stream":"stdout","message":"hi","time":"2026-11-26T12:00:00Z"}`,
		`{"type":"log","level":"warn","stream":"stderr","message":"m","time":"2026-11-26T12:00:00.123Z","truncated":true}`,
		`{"type":"log","type":"result","id":"ex_1","success":true}`,
		`{"type":"log","type":"bogus"}`,
		`{"type":"log","Type":"start","id":"ex_1"}`,
		`{"type":"log","TYPE":"restart","reason":"x"}`,
		`{"type":"log","message":1}`,
		`{"type":"log","time":"yesterday"}`,
		`{"type":"log","level":"log","extra":{"a":[1,2]},"id":"x","reason":"y"}`,
		`{"type":"log",}`,
		`{"type":"log","message":"a"} trailing`,
		`{"type":"log","message":"\u0000\ud800"}`,
		`{"type":"start","id":"ex_1"}`,
		`{"type":"result","id":"ex_1","success":false,"error":{"code":"timeout","message":"late"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow Event
		errFast := fast.UnmarshalJSON(data)
		errSlow := slow.unmarshalByType(data)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%s: one pass err %v, by type err %v", data, errFast, errSlow)
		}
		if errFast == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: one pass %+v, by type %+v", data, fast, slow)
		}
	})
}
