package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// OpenSQLite opens (or creates) the SQLite store in the file at path and
// applies its migrations. One gateway uses a file: it holds a lock on
// path+".lock" (ErrInUse when another process does), and when it opens, the
// leases of any earlier process are dropped, so executions it left running
// are recovered by the first Recover.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	return openSQLite(ctx, path, Options{})
}

// sqlitePageSize is SQLite's default page size, which the gateway keeps.
const sqlitePageSize = 4096

func openSQLite(ctx context.Context, path string, opts Options) (Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", path, err)
	}
	if err := createPrivate(path); err != nil {
		lock.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	// WAL lets readers run beside the writer; busy_timeout waits for the
	// writer instead of failing; immediate transactions take the write lock
	// at BEGIN, so two never deadlock upgrading. The WAL is copied back into
	// the database every 10,000 pages (40 MB), not SQLite's default 1,000:
	// the same hot pages are copied a tenth as often, and copying them is
	// a large part of the recording writer's cost.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(10000)"
	if opts.MaxFileBytes > 0 {
		// Past max_page_count SQLite refuses a write with SQLITE_FULL, as
		// it does on a full disk.
		dsn += fmt.Sprintf("&_pragma=max_page_count(%d)", max(1, opts.MaxFileBytes/sqlitePageSize))
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	err = migrate(ctx, db, goose.DialectSQLite3, "sqlite")
	if err == nil {
		_, err = db.ExecContext(ctx, `DELETE FROM gateway_leases`)
	}
	if err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("storage %s: %w", path, err)
	}
	st := &sqlStore{db: db, lock: lock}
	if err := st.loadCursorKey(ctx); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("storage %s: %w", path, err)
	}
	return st, nil
}

// createPrivate creates the database file, if missing, readable by the
// gateway's user only: it holds queued requests with their secrets. SQLite
// gives its -wal and -shm files the database file's mode. An existing
// file keeps the mode it has.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}
