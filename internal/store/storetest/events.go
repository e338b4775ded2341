package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/dynamic-workers/gateway/internal/store"
)

// testEvents appends an execution's events in two writes and reads them
// back after a seq, up to a limit; a seq stored again is refused.
func testEvents(t *testing.T, s store.Store) {
	create(t, s, store.Execution{ID: "ex_e", Caller: "a", Status: store.Running, Owner: "gw"})
	var evs []store.Event
	for i := int64(1); i <= 7; i++ {
		evs = append(evs, store.Event{Seq: i, Type: "log", Data: json.RawMessage(fmt.Sprintf(`{"type":"log","n":%d}`, i))})
	}
	if err := s.AppendEvents(t.Context(), "ex_e", evs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(t.Context(), "ex_e", evs[3:]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(t.Context(), "ex_e", evs[6:]); err == nil {
		t.Error("AppendEvents(an id again) = nil, want an error")
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{{0, 100, []int64{1, 2, 3, 4, 5, 6, 7}}, {3, 100, []int64{4, 5, 6, 7}}, {2, 2, []int64{3, 4}}, {7, 10, nil}} {
		got, err := s.Events(t.Context(), "ex_e", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, ev := range got {
			seqs = append(seqs, ev.Seq)
			if want := fmt.Sprintf(`{"type":"log","n":%d}`, ev.Seq); !jsonEqual(ev.Data, want) || ev.Type != "log" {
				t.Errorf("event %d = %s %s, want log %s", ev.Seq, ev.Type, ev.Data, want)
			}
		}
		if !slices.Equal(seqs, tc.want) {
			t.Errorf("Events(after %d, limit %d) = %v, want %v", tc.after, tc.limit, seqs, tc.want)
		}
	}
}

// testEventRuns stores a flood of log events between other events, in
// writes of several sizes, and reads them back page by page from every
// kind of point: each event exactly once, in order, as it was stored.
func testEventRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	create(t, s, store.Execution{ID: "ex_r", Caller: "a", Status: store.Running, Owner: "gw"})
	const n = 1000
	var all []store.Event
	for seq := int64(1); seq <= n; seq++ {
		typ := "log"
		switch {
		case seq == 1:
			typ = "start"
		case seq%97 == 0:
			typ = "net"
		case seq == n:
			typ = "result"
		}
		all = append(all, store.Event{Seq: seq, Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"type":%q,"n":%d,"s":"a\u0000\"]"}`, typ, seq))})
	}
	for i, size := 0, 1; i < n; i, size = i+size, size*3%700+1 {
		if err := s.AppendEvents(ctx, "ex_r", all[i:min(n, i+size)]); err != nil {
			t.Fatalf("AppendEvents(%d..) = %v", i+1, err)
		}
	}
	for _, page := range []int{1, 7, 256, 2000} {
		for _, from := range []int64{0, 1, 2, 255, 256, 257, 500, 999, 1000} {
			var got []store.Event
			for after := from; ; {
				evs, err := s.Events(ctx, "ex_r", after, page)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) > page {
					t.Fatalf("Events(after %d, limit %d) = %d events", after, page, len(evs))
				}
				got = append(got, evs...)
				if len(evs) < page {
					break
				}
				after = evs[len(evs)-1].Seq
			}
			want := all[from:]
			if len(got) != len(want) {
				t.Fatalf("pages of %d from %d: %d events, want %d", page, from, len(got), len(want))
			}
			for i := range want {
				if got[i].Seq != want[i].Seq || got[i].Type != want[i].Type || !jsonEqual(got[i].Data, string(want[i].Data)) {
					t.Fatalf("pages of %d from %d: event %d = %d %s %s, want %d %s %s", page, from, i,
						got[i].Seq, got[i].Type, got[i].Data, want[i].Seq, want[i].Type, want[i].Data)
				}
			}
		}
	}
}

func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && fmt.Sprint(a) == fmt.Sprint(b)
}
