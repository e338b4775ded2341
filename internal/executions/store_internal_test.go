package executions

import (
	"path/filepath"
	"testing"

	"github.com/dynamic-workers/gateway/internal/store"
)

// openStore opens a SQLite store of tb's own, closed when tb ends.
func openStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := store.Open(tb.Context(), filepath.Join(tb.TempDir(), "executions.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
