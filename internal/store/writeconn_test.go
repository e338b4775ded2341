package store

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestApplyAfterAFailedBatch: on SQLite a batch is applied on the store's
// own write connection; one the database refuses (a full database, or a
// statement that fails and leaves the transaction open: an event stored
// twice) leaves nothing of itself, and the same store applies the next
// batch.
func TestApplyAfterAFailedBatch(t *testing.T) {
	t.Parallel()
	st, err := openSQLite(t.Context(), filepath.Join(t.TempDir(), "executions.db"), Options{MaxFileBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	now := time.Now()
	ended := func(id string, size int) Write {
		return Write{
			Create: &Execution{ID: id, Caller: "alice", Status: Running, Owner: "gw", CreatedAt: now, StartedAt: now},
			Finish: &Ending{Owner: "gw", Status: Finished, ResultJSON: []byte(`"` + strings.Repeat("x", size) + `"`), At: now},
		}
	}
	stored := func(id string) bool {
		_, err := s.Get(t.Context(), "alice", id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	applyAfter := func(what string) {
		t.Helper()
		id := "ex_after_" + strings.ReplaceAll(what, " ", "_")
		if errs, err := s.Apply(t.Context(), []Write{ended(id, 10)}); err != nil || errs[0] != nil {
			t.Fatalf("after %s: Apply = %v, %v", what, errs, err)
		}
		if !stored(id) {
			t.Errorf("after %s: the next batch's record is not stored", what)
		}
	}

	// An event stored twice: the insert fails, the transaction stays open
	// until it is rolled back.
	running := Write{Create: &Execution{ID: "ex_run", Caller: "alice", Status: Running, Owner: "gw", CreatedAt: now, StartedAt: now},
		Events: []Event{{Seq: 1, Type: "start", Data: []byte(`{"type":"start"}`)}}}
	again := Write{ID: "ex_run", Events: []Event{{Seq: 1, Type: "start", Data: []byte(`{"type":"start"}`)}}}
	if _, err := s.Apply(t.Context(), []Write{ended("ex_first", 10), running, again}); err == nil {
		t.Fatal("Apply of an event stored twice succeeded, want an error")
	}
	if stored("ex_first") || stored("ex_run") {
		t.Error("a record of the refused batch is stored")
	}
	applyAfter("an event stored twice")

	// A full database.
	var failed error
	for i := 0; failed == nil; i++ {
		if i == 64 {
			t.Fatal("64 records of 64 KB fit in a 1 MB database")
		}
		n := strconv.Itoa(i)
		if _, failed = s.Apply(t.Context(), []Write{ended("ex_a"+n, 64<<10), ended("ex_b"+n, 64<<10)}); failed != nil && stored("ex_a"+n) {
			t.Error("a record of the refused batch is stored")
		}
	}
	if _, err := s.db.ExecContext(t.Context(), `DELETE FROM executions`); err != nil {
		t.Fatal(err)
	}
	applyAfter("a full database")
}
