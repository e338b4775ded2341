package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// A record written as it ended (a short synchronous execution) carries its
// events in its own row, in the executions.events column, when they are
// few: a commit writes every page it changes, and rows of their own would
// change the events table's pages too, in a separate statement per row.
// Events reads them from either place; nothing is appended to a record
// that ended, and if something were, the two are read together in order.
// Their bytes count as they would in rows of their own.

// inlineMax is the most bytes of events a record holds inline: past it
// (a guest that printed a lot), they are rows of their own, which a
// stream with a cursor reads a few at a time.
const inlineMax = 8 << 10

// inlineEvents is rows (eventRows) as a record holds them: each row
// "seq,type,len:" and then its data; nil (NULL) when there are none, when
// they are more than inlineMax bytes, or when a type is not a plain word.
func inlineEvents(rows []Event) any {
	if len(rows) == 0 || rowBytes(rows) > inlineMax {
		return nil
	}
	b := make([]byte, 0, rowBytes(rows)+24*len(rows))
	for _, ev := range rows {
		if !plainType(ev.Type) {
			return nil
		}
		b = strconv.AppendInt(b, ev.Seq, 10)
		b = append(b, ',')
		b = append(b, ev.Type...)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(len(ev.Data)), 10)
		b = append(b, ':')
		b = append(b, ev.Data...)
	}
	return string(b)
}

// plainType reports whether t is a word of lower-case letters and '_',
// as every event type is: one never holds a separator of inlineEvents.
func plainType(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// parseInline reads what inlineEvents wrote back into rows.
func parseInline(s string) ([]Event, error) {
	var rows []Event
	for s != "" {
		var ev Event
		seq, s1, ok1 := strings.Cut(s, ",")
		typ, s2, ok2 := strings.Cut(s1, ",")
		size, rest, ok3 := strings.Cut(s2, ":")
		var err error
		if ev.Seq, err = strconv.ParseInt(seq, 10, 64); err != nil || !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("inline events: a malformed event after %d", len(rows))
		}
		n, err := strconv.Atoi(size)
		if err != nil || n < 0 || n > len(rest) {
			return nil, fmt.Errorf("inline events: a malformed length after %d", len(rows))
		}
		ev.Type, ev.Data, s = typ, json.RawMessage(rest[:n]), rest[n:]
		rows = append(rows, ev)
	}
	return rows, nil
}
