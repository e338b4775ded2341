package store

import (
	"database/sql"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestMigrateFrom00006: a SQLite database at migration 00006, with records
// in every state, opens (migrating to 00007) and reads back the same: each
// record, its events (rows of their own, logs packed), the usage, the
// queue, the callbacks, Recover's running records. The indexes that only
// queued, running and pending records need hold only those.
func TestMigrateFrom00006(t *testing.T) {
	path := filepath.Join(t.TempDir(), "executions.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 6); err != nil {
		t.Fatal(err)
	}
	const t0 = 1_800_000_000_000_000
	result := `{"id":"ex_done","success":true,"stdout":"hi"}`
	for _, q := range []string{
		`INSERT INTO executions (id, caller, status, async, outbound, result, created_at, started_at, finished_at, bytes)
		 VALUES ('ex_done', 'alice', 'finished', FALSE, FALSE, '` + result + `', 1800000000000000, 1800000000000001, 1800000000000002, 100)`,
		`INSERT INTO executions (id, caller, status, async, outbound, request, created_at, bytes)
		 VALUES ('ex_queued', 'alice', 'queued', TRUE, FALSE, '{"code":"x"}', 1800000000000003, 0)`,
		`INSERT INTO executions (id, caller, status, async, outbound, request, owner, attempts, created_at, started_at, bytes)
		 VALUES ('ex_running', 'bob', 'running', TRUE, FALSE, '{"code":"y"}', 'gw-dead', 1, 1800000000000004, 1800000000000005, 0)`,
		`INSERT INTO executions (id, caller, status, async, outbound, callback_url, callback_state, result, created_at, finished_at, bytes)
		 VALUES ('ex_callback', 'bob', 'finished', TRUE, FALSE, 'https://example.test/cb', 'pending', '{}', 1800000000000006, 1800000000000007, 2)`,
		`INSERT INTO execution_events (execution_id, seq, type, data) VALUES
		 ('ex_done', 1, 'start', '{"type":"start","id":"ex_done"}'),
		 ('ex_done', 3, 'logs', '[{"type":"log","message":"a"},{"type":"log","message":"b"}]'),
		 ('ex_done', 4, 'result', '{"type":"result","success":true}'),
		 ('ex_running', 1, 'start', '{"type":"start","id":"ex_running"}')`,
		`INSERT INTO caller_usage (caller, bytes) VALUES ('alice', 100), ('bob', 2)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	st, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	e, err := st.Get(ctx, "alice", "ex_done")
	if err != nil || e.Status != Finished || string(e.ResultJSON) != result || e.CreatedAt.UnixMicro() != t0 || e.FinishedAt.UnixMicro() != t0+2 {
		t.Errorf("Get(ex_done) = %+v, %v", e, err)
	}
	evs, err := st.Events(ctx, "ex_done", 0, 10)
	want := []Event{
		{Seq: 1, Type: "start", Data: json.RawMessage(`{"type":"start","id":"ex_done"}`)},
		{Seq: 2, Type: "log", Data: json.RawMessage(`{"type":"log","message":"a"}`)},
		{Seq: 3, Type: "log", Data: json.RawMessage(`{"type":"log","message":"b"}`)},
		{Seq: 4, Type: "result", Data: json.RawMessage(`{"type":"result","success":true}`)},
	}
	if err != nil || !sameEvents(evs, want) {
		t.Errorf("Events(ex_done) = %v, %v; want %v", evs, err, want)
	}
	if evs, err := st.Events(ctx, "ex_done", 2, 1); err != nil || !sameEvents(evs, want[2:3]) {
		t.Errorf("Events(ex_done, after 2, limit 1) = %v, %v", evs, err)
	}
	for caller, n := range map[string]int64{"alice": 100, "bob": 2} {
		if got, err := st.Usage(ctx, caller); err != nil || got != n {
			t.Errorf("Usage(%s) = %d, %v; want %d", caller, got, err, n)
		}
	}
	if page, err := st.List(ctx, "alice", Query{}); err != nil || len(page.Executions) != 2 || page.Executions[0].ID != "ex_queued" {
		t.Errorf("List(alice) = %+v, %v", page, err)
	}
	if n, err := st.CountQueued(ctx); err != nil || n != 1 {
		t.Errorf("CountQueued = %d, %v; want 1", n, err)
	}
	// The dead gateway's running record is recovered: queued again.
	if rec, err := st.Recover(ctx, time.Now()); err != nil || len(rec.Requeued) != 1 || rec.Requeued[0] != "ex_running" {
		t.Errorf("Recover = %+v, %v; want ex_running requeued", rec, err)
	}
	if n, err := st.CountQueued(ctx); err != nil || n != 2 {
		t.Errorf("CountQueued after Recover = %d, %v; want 2", n, err)
	}
	claimed, err := st.Claim(ctx, "gw", time.Now(), Limits{})
	if err != nil || claimed.ID != "ex_queued" || string(claimed.Request) != `{"code":"x"}` || claimed.LastEvent != 0 {
		t.Errorf("Claim = %+v, %v; want ex_queued", claimed, err)
	}
	claimed, err = st.Claim(ctx, "gw", time.Now(), Limits{})
	if err != nil || claimed.ID != "ex_running" || claimed.LastEvent != 2 {
		t.Errorf("second Claim = %+v, %v; want ex_running after its start and restart events", claimed, err)
	}
	if err := st.Lease(ctx, "gw", time.Now().Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if cb, err := st.ClaimCallback(ctx, "gw", time.Now()); err != nil || cb.ID != "ex_callback" || cb.CallbackURL != "https://example.test/cb" {
		t.Errorf("ClaimCallback = %+v, %v; want ex_callback", cb, err)
	}

	// The schema: the new column, and the partial indexes.
	raw := st.(*sqlStore).db
	indexes := map[string]string{}
	rows, err := raw.Query(`SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'executions' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, sql string
		if err := rows.Scan(&name, &sql); err != nil {
			t.Fatal(err)
		}
		indexes[name] = sql
	}
	rows.Close()
	if _, ok := indexes["executions_status"]; ok || !strings.Contains(indexes["executions_live"], "WHERE status = 'queued' OR status = 'running'") ||
		!strings.Contains(indexes["executions_callback"], "WHERE callback_state = 'pending'") {
		t.Errorf("indexes of executions = %v", indexes)
	}
	// Each query of queued or running records is answered from the partial
	// index, not by a scan of every record.
	for _, q := range []string{
		`SELECT COUNT(*) FROM executions WHERE status = ` + sqlQueued,
		`SELECT id FROM executions WHERE owner = 'gw' AND status = ` + sqlRunning + ` AND cancel_requested`,
		`SELECT seq FROM executions WHERE ` + strings.ReplaceAll(callbackFree, "?", "0") + ` ORDER BY seq LIMIT 1`,
	} {
		var plan strings.Builder
		rows, err := raw.Query(`EXPLAIN QUERY PLAN ` + q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "; ")
		}
		rows.Close()
		if !strings.Contains(plan.String(), "executions_live") && !strings.Contains(plan.String(), "executions_callback") {
			t.Errorf("%s: plan %s, want a partial index", q, plan.String())
		}
	}
}

// TestMigrate00008: executions.seq loses AUTOINCREMENT (no sqlite_sequence
// page per record); the records and their order are kept, a new record's
// seq is above every record's, and going down restores AUTOINCREMENT
// counting on from the largest seq.
func TestMigrate00008(t *testing.T) {
	path := filepath.Join(t.TempDir(), "executions.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO executions (seq, id, caller, status, async, outbound, result, created_at, finished_at, bytes, events)
		 VALUES (1, 'ex_a', 'alice', 'finished', FALSE, FALSE, '{}', 1, 2, 2, '1,start,2:{}'),
		        (5, 'ex_b', 'alice', 'finished', FALSE, FALSE, '{}', 3, 4, 2, NULL),
		        (7, 'ex_gone', 'alice', 'finished', FALSE, FALSE, '{}', 5, 6, 2, NULL)`,
		`DELETE FROM executions WHERE id = 'ex_gone'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := p.UpTo(t.Context(), 8); err != nil {
		t.Fatal(err)
	}
	schema := func() (table string, counted int) {
		t.Helper()
		if err := db.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'executions'`).Scan(&table); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'executions'`).Scan(&counted); err != nil {
			t.Fatal(err)
		}
		return table, counted
	}
	if table, counted := schema(); strings.Contains(table, "AUTOINCREMENT") || counted != 0 {
		t.Errorf("after 00008: executions %q, %d sqlite_sequence rows; want no AUTOINCREMENT, none", table, counted)
	}
	var records string
	if err := db.QueryRow(`SELECT group_concat(seq || ':' || id || ':' || COALESCE(events, ''), ' ') FROM (SELECT * FROM executions ORDER BY seq)`).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if want := "1:ex_a:1,start,2:{} 5:ex_b:"; records != want {
		t.Errorf("records after 00008 = %q, want %q", records, want)
	}
	var seq int64
	if err := db.QueryRow(`INSERT INTO executions (id, caller, status, async, outbound, created_at) VALUES ('ex_new', 'alice', 'queued', TRUE, FALSE, 9) RETURNING seq`).Scan(&seq); err != nil || seq <= 5 {
		t.Errorf("a new record's seq = %d, %v; want above every record's (5)", seq, err)
	}
	if _, err := p.DownTo(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	if table, counted := schema(); !strings.Contains(table, "AUTOINCREMENT") || counted != 1 {
		t.Errorf("after going down: executions %q, %d sqlite_sequence rows; want AUTOINCREMENT counting", table, counted)
	}
	if err := db.QueryRow(`INSERT INTO executions (id, caller, status, async, outbound, created_at) VALUES ('ex_down', 'alice', 'queued', TRUE, FALSE, 10) RETURNING seq`).Scan(&seq); err != nil || seq != 7 {
		t.Errorf("after going down, a new record's seq = %d, %v; want 7", seq, err)
	}
}
