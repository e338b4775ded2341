package store

import (
	"context"
	"database/sql"
	"errors"
)

// writeConn is the connection SQLite's Apply writes on, kept for it: a
// batch is BEGIN IMMEDIATE, its statements and COMMIT, run as statements
// rather than in a sql.Tx (database/sql starts a goroutine per transaction
// to watch its context: ~8 µs of a record's ~110), with the kept
// statements prepared on it.
type writeConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

func (w *writeConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.conn.ExecContext(ctx, query, args...)
}

// prepared returns w's kept statement of query, preparing it the first time.
func (w *writeConn) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := w.stmts[query]; ok {
		return stmt, nil
	}
	stmt, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = stmt
	return stmt, nil
}

func (w *writeConn) close() error {
	for _, stmt := range w.stmts {
		stmt.Close()
	}
	return w.conn.Close()
}

// applySQLite applies writes in one transaction on the write connection.
// Its statements run without a cancellable context: SQLite's driver
// starts a goroutine per statement (BEGIN and COMMIT too) to interrupt it
// when one ends, which for these short inserts into a local file costs
// more than they do. Their bound is busy_timeout (a stalled disk is beyond
// an interrupt anyway). A connection left in doubt (a failed BEGIN, or a
// ROLLBACK that failed) is closed, and the next batch opens another.
func (s *sqlStore) applySQLite(ctx context.Context, writes []Write) ([]error, error) {
	ctx = context.WithoutCancel(ctx)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wc == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		s.wc = &writeConn{conn: conn, stmts: map[string]*sql.Stmt{}}
	}
	w := s.wc
	if _, err := w.conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		s.dropWriteConn()
		return nil, err
	}
	errs, err := s.applyIn(ctx, w, writes)
	if err == nil {
		if _, err = w.conn.ExecContext(ctx, `COMMIT`); err == nil {
			return errs, nil
		}
	}
	if _, rerr := w.conn.ExecContext(ctx, `ROLLBACK`); rerr != nil {
		s.dropWriteConn()
	}
	return nil, err
}

// dropWriteConn closes the write connection; s.wmu is held.
func (s *sqlStore) dropWriteConn() {
	if s.wc != nil {
		_ = s.wc.close()
		s.wc = nil
	}
}

// closeWriteConn closes the write connection, if there is one.
func (s *sqlStore) closeWriteConn() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wc == nil {
		return nil
	}
	err := s.wc.close()
	s.wc = nil
	if errors.Is(err, sql.ErrConnDone) {
		return nil
	}
	return err
}
