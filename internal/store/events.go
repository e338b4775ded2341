package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

// The events of an execution, as the SQL store keeps them: appended as they
// happen, runs of log events packed into one row, read back one by one; a
// record written as it ended holds a few in its own row (inline.go).

func (s *sqlStore) AppendEvents(ctx context.Context, id string, events []Event) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.insertEvents(ctx, tx, id, events); err != nil {
		return err
	}
	return tx.Commit()
}

// execer is a database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// logRun is the most log events one stored row holds. A guest printing in
// a loop makes tens of thousands of log events (up to its log budget); at
// a row each, recording one such execution would cost the writer seconds
// of CPU, taken from every other execution on the machine. So consecutive
// log events are stored together: a row of type logsRow whose data is the
// JSON array of the events and whose seq is the last one's (the events in
// it are numbered up to it, one by one). Events gives them back one by one.
const logRun = 256

// logsRow is the type of a row holding consecutive log events.
const logsRow = "logs"

// eventRows is how events are stored: runs of consecutive log events as
// logsRow rows of up to logRun events, the rest a row each.
func eventRows(events []Event) []Event {
	rows := make([]Event, 0, len(events))
	for i := 0; i < len(events); {
		j := i
		for j < len(events) && j-i < logRun && events[j].Type == execution.EventLog &&
			(j == i || events[j].Seq == events[j-1].Seq+1) {
			j++
		}
		if j-i < 2 {
			rows = append(rows, events[i])
			i++
			continue
		}
		size := 1
		for _, ev := range events[i:j] {
			size += len(ev.Data) + 1
		}
		data := make([]byte, 0, size)
		data = append(data, '[')
		for k, ev := range events[i:j] {
			if k > 0 {
				data = append(data, ',')
			}
			data = append(data, ev.Data...)
		}
		data = append(data, ']')
		rows = append(rows, Event{Seq: events[j-1].Seq, Type: logsRow, Data: data})
		i = j
	}
	return rows
}

// insertEvents stores events of id, counting their bytes for its caller.
func (s *sqlStore) insertEvents(ctx context.Context, db execer, id string, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	rows := eventRows(events)
	if err := s.insertEventRows(ctx, db, id, rows); err != nil {
		return err
	}
	return s.addBytes(ctx, db, id, rowBytes(rows))
}

// rowBytes is the bytes rows take, as they count against a key's bound.
func rowBytes(rows []Event) int {
	size := 0
	for _, ev := range rows {
		size += len(ev.Data)
	}
	return size
}

// insertEventRows inserts rows (eventRows) of record id; their bytes are
// the caller's to count.
func (s *sqlStore) insertEventRows(ctx context.Context, db execer, id string, rows []Event) error {
	if len(rows) == 0 {
		return nil
	}
	if !s.postgres {
		// SQLite: one kept statement run per row costs less than parsing
		// a statement of as many rows (there is no round trip to save).
		for _, ev := range rows {
			if _, err := s.execKept(ctx, db, insertEvent, id, ev.Seq, ev.Type, string(ev.Data)); err != nil {
				return err
			}
		}
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 4*len(rows))
	b.WriteString(`INSERT INTO execution_events (execution_id, seq, type, data) VALUES `)
	for i, ev := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		args = append(args, id, ev.Seq, ev.Type, string(ev.Data))
	}
	_, err := db.ExecContext(ctx, s.q(b.String()), args...)
	return err
}

// insertEvent stores one row of events (SQLite).
const insertEvent = `INSERT INTO execution_events (execution_id, seq, type, data) VALUES (?, ?, ?, ?)`

// Events reads rows until it has limit events: a row holds at least one
// event after after (its seq is its last event's), so limit rows are
// enough. The same query reads the record's inline events (inline.go),
// marked by an empty type.
func (s *sqlStore) Events(ctx context.Context, id string, after int64, limit int) ([]Event, error) {
	stored, err := s.eventRows(ctx, id, after, limit)
	if err != nil {
		return nil, err
	}
	var out []Event
	for _, ev := range stored {
		if len(out) == limit {
			break
		}
		if ev.Type != logsRow {
			out = append(out, ev)
			continue
		}
		var logs []json.RawMessage
		if err := json.Unmarshal(ev.Data, &logs); err != nil {
			return nil, fmt.Errorf("storage: events of %s: %w", id, err)
		}
		first := ev.Seq - int64(len(logs)) + 1
		for i, data := range logs {
			if seq := first + int64(i); seq > after && len(out) < limit {
				out = append(out, Event{Seq: seq, Type: execution.EventLog, Data: data})
			}
		}
	}
	return out, nil
}

// eventRows reads the stored rows of record id after after, in order: up
// to limit of its rows of their own, and those it holds inline.
func (s *sqlStore) eventRows(ctx context.Context, id string, after int64, limit int) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, type, data FROM
		(SELECT seq, type, data FROM execution_events WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?) AS own
		UNION ALL SELECT 0, '', events FROM executions WHERE id = ? AND events IS NOT NULL`), id, after, limit, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	inline := false
	for rows.Next() {
		var ev Event
		var data string
		if err := rows.Scan(&ev.Seq, &ev.Type, &data); err != nil {
			return nil, err
		}
		if ev.Type != "" {
			ev.Data = json.RawMessage(data)
			out = append(out, ev)
			continue
		}
		held, err := parseInline(data)
		if err != nil {
			return nil, fmt.Errorf("storage: events of %s: %w", id, err)
		}
		for _, ev := range held {
			if ev.Seq > after {
				out = append(out, ev)
			}
		}
		inline = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if inline {
		slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return out, nil
}
