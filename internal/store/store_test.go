package store_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.StopShared()
	os.Exit(code)
}

// TestSQLite runs the conformance suite on SQLite files.
func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "sub", "executions.db"))
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		return s
	})
}

// TestPostgres runs the conformance suite on a real PostgreSQL server the
// test starts; it fails (never skips) when PostgreSQL is not installed.
func TestPostgres(t *testing.T) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		t.Fatalf("PostgreSQL for the store tests: %v", err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Open(t.Context(), pg.NewDatabase(t))
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		return s
	})
}

// TestSQLiteReopen checks that a record survives closing and reopening
// the file, and that reopening drops the old process's leases.
func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "executions.db")
	s, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), &store.Execution{ID: "ex_1", Caller: "a", Status: store.Queued, Async: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(t.Context(), "old", time.Now(), store.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Lease(t.Context(), "old", time.Now().Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Recover(t.Context(), time.Now())
	if err != nil || len(got.Requeued) != 1 || got.Requeued[0] != "ex_1" {
		t.Errorf("Recover after reopen = %+v, %v; want ex_1 requeued", got, err)
	}
}

// TestSQLiteOneGateway checks that a second store on a file in use is
// refused, and that closing the first frees it.
func TestSQLiteOneGateway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "executions.db")
	first, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(t.Context(), path); !errors.Is(err, store.ErrInUse) {
		t.Errorf("Open(a file in use) = %v, want ErrInUse", err)
	}
	first.Close()
	second, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	second.Close()
}

// TestLogFloodRows checks that a flood of log events is stored in few rows
// (what recording a guest that prints in a loop costs the writer), read
// from the SQLite file itself.
func TestLogFloodRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "executions.db")
	s, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(t.Context(), &store.Execution{ID: "ex_f", Caller: "a", Status: store.Running, Owner: "gw"}); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = store.Event{Seq: int64(i + 1), Type: "log", Data: json.RawMessage(`{"type":"log","message":"flood"}`)}
	}
	if err := s.AppendEvents(t.Context(), "ex_f", evs); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow(`SELECT COUNT(*) FROM execution_events WHERE execution_id = 'ex_f'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows > n/200 {
		t.Errorf("%d log events stored in %d rows, want at most %d", n, rows, n/200)
	}
	got, err := s.Events(t.Context(), "ex_f", n-3, 10)
	if err != nil || len(got) != 3 || got[0].Seq != n-2 || got[2].Seq != n {
		t.Errorf("the last events = %v, %v; want seqs %d..%d", got, err, n-2, n)
	}
}
