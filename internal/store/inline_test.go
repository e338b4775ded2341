package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestInlineEvents: a record written as it ended holds its events in its
// own row when they are few, and rows of their own otherwise; either way
// every read of its events (each cursor and limit), its bytes and its
// caller's usage answer as for the same record written in two steps (its
// events in rows of their own). Event data that looks like the inline
// framing, and a type that is not a plain word, are read back as written.
func TestInlineEvents(t *testing.T) {
	result := `{"id":"ex_x","success":true,"stdout":"1,log,5:{}"}`
	logs := func(n int, msg string) []Event {
		evs := make([]Event, n)
		for i := range evs {
			evs[i] = Event{Seq: int64(i + 2), Type: "log", Data: json.RawMessage(fmt.Sprintf(`{"type":"log","message":%q}`, msg))}
		}
		return evs
	}
	events := func(middle ...Event) []Event {
		evs := []Event{{Seq: 1, Type: "start", Data: json.RawMessage(`{"type":"start","id":"ex_x"}`)}}
		evs = append(evs, middle...)
		return append(evs, Event{Seq: int64(len(evs) + 1), Type: "result", Data: json.RawMessage(`{"type":"result",` + result[1:])})
	}
	for _, tc := range []struct {
		name   string
		events []Event
		inline bool
	}{
		{"a hello world", events(logs(1, "hi")...), true},
		{"logs packed in a row", events(logs(5, "hi")...), true},
		{"data that looks like the framing", events(logs(3, `9,result,2:{}3,log,`)...), true},
		{"a length prefix too long", events(Event{Seq: 2, Type: "log", Data: json.RawMessage(`{"type":"log","message":"99999:"}`)}), true},
		{"a type not a plain word", events(Event{Seq: 2, Type: "x,1:y", Data: json.RawMessage(`{"type":"x"}`)}), false},
		{"more than inlineMax", events(logs(300, strings.Repeat("a", 40))...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "executions.db")
			st, err := OpenSQLite(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			now := time.Now()
			record := func(id, caller string) *Execution {
				return &Execution{ID: id, Caller: caller, Status: Running, Owner: "gw", CreatedAt: now, StartedAt: now}
			}
			end := &Ending{Owner: "gw", Status: Finished, ResultJSON: json.RawMessage(result), At: now}
			n := len(tc.events)
			// Written whole, as it ended; and in two steps.
			if _, err := st.Apply(t.Context(), []Write{{Create: record("ex_whole", "whole"), Events: tc.events, Finish: end}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Apply(t.Context(), []Write{{Create: record("ex_steps", "steps"), Events: tc.events[:n-1]}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Apply(t.Context(), []Write{{ID: "ex_steps", Events: tc.events[n-1:], Finish: end}}); err != nil {
				t.Fatal(err)
			}
			db := st.(*sqlStore).db
			var rows int
			var held sql.NullString
			if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM execution_events WHERE execution_id = 'ex_whole'), events
				FROM executions WHERE id = 'ex_whole'`).Scan(&rows, &held); err != nil {
				t.Fatal(err)
			}
			if held.Valid != tc.inline || (rows == 0) != tc.inline {
				t.Errorf("held inline %v, %d rows of their own; want inline %v", held.Valid, rows, tc.inline)
			}
			for after := int64(0); after <= int64(n); after++ {
				for _, limit := range []int{1, 2, 3, 7, 256, n + 1} {
					whole, err := st.Events(t.Context(), "ex_whole", after, limit)
					if err != nil {
						t.Fatal(err)
					}
					steps, err := st.Events(t.Context(), "ex_steps", after, limit)
					if err != nil {
						t.Fatal(err)
					}
					want := tc.events[after:min(n, int(after)+limit)]
					if !sameEvents(whole, want) || !sameEvents(steps, want) {
						t.Fatalf("Events(after %d, limit %d) = %v (whole), %v (in steps); want %v", after, limit, whole, steps, want)
					}
				}
			}
			var wholeBytes, stepsBytes int64
			if err := db.QueryRow(`SELECT (SELECT bytes FROM executions WHERE id = 'ex_whole'), (SELECT bytes FROM executions WHERE id = 'ex_steps')`).Scan(&wholeBytes, &stepsBytes); err != nil {
				t.Fatal(err)
			}
			wholeUsage, err1 := st.Usage(t.Context(), "whole")
			stepsUsage, err2 := st.Usage(t.Context(), "steps")
			if err1 != nil || err2 != nil || wholeBytes != stepsBytes || wholeUsage != stepsUsage || wholeUsage != wholeBytes || wholeBytes <= int64(len(result)) {
				t.Errorf("bytes %d whole, %d in steps; usage %d, %d (%v, %v): want all the same, over the result's %d",
					wholeBytes, stepsBytes, wholeUsage, stepsUsage, err1, err2, len(result))
			}
			// An event appended to it later is read after the others.
			extra := Event{Seq: int64(n + 1), Type: "log", Data: json.RawMessage(`{"type":"log","message":"late"}`)}
			if err := st.AppendEvents(t.Context(), "ex_whole", []Event{extra}); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Events(t.Context(), "ex_whole", 0, n+5); err != nil || !sameEvents(got, append(tc.events[:n:n], extra)) {
				t.Errorf("with an event appended, Events = %v, %v", got, err)
			}
			// Deleted with its record.
			if _, err := st.Purge(t.Context(), now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Events(t.Context(), "ex_whole", 0, n+5); err != nil || len(got) != 0 {
				t.Errorf("after Purge, Events = %v, %v; want none", got, err)
			}
		})
	}
}

func sameEvents(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || a[i].Type != b[i].Type || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}

// TestParseInlineRefusesDamage: inline events cut short or with a bad
// length are an error, not events made up.
func TestParseInlineRefusesDamage(t *testing.T) {
	good := inlineEvents([]Event{{Seq: 1, Type: "start", Data: json.RawMessage(`{"a":1}`)}, {Seq: 2, Type: "log", Data: json.RawMessage(`{}`)}}).(string)
	if rows, err := parseInline(good); err != nil || len(rows) != 2 {
		t.Fatalf("parseInline(%q) = %v, %v", good, rows, err)
	}
	for _, bad := range []string{good[:len(good)-1], "1,start,8:{\"a\":1}", "1,start", "x,start,2:{}", "1,start,-1:{}", "1,start,2{}"} {
		if rows, err := parseInline(bad); err == nil {
			t.Errorf("parseInline(%q) = %v, want an error", bad, rows)
		}
	}
	if !reflect.DeepEqual(inlineEvents(nil), nil) {
		t.Error("no events are held inline as something")
	}
}
