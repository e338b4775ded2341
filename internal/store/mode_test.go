package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamic-workers/gateway/internal/store"
)

// TestSQLiteFileIsPrivate: the database file and its WAL files, which hold
// queued requests with their secrets, are readable by the gateway's user
// only, whatever the umask.
func TestSQLiteFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "executions.db")
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Errorf("Stat(%s) = %v, want the file there", filepath.Base(name), err)
			continue
		}
		if mode := info.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", filepath.Base(name), mode)
		}
	}
}
