package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/dynamic-workers/gateway/execution"
)

//go:embed migrations
var migrations embed.FS

// sqlStore is the Store on a database/sql database; SQLite and PostgreSQL
// differ only in placeholders, the claim's row lock and the migrations.
type sqlStore struct {
	db       *sql.DB
	postgres bool
	lock     io.Closer // SQLite: the file's lock
	// stmts holds the statements the recording writer runs for every
	// execution, prepared once, by query text: SQLite would otherwise parse
	// each anew, a large share of the writer's CPU.
	stmts sync.Map // string → *sql.Stmt
	// wc is SQLite's write connection (writeconn.go), guarded by wmu.
	wmu sync.Mutex
	wc  *writeConn
	// cursors seals list cursors (cursor.go): its key is in the database,
	// shared by every gateway on it.
	cursors cipher.Block
}

// execKept runs query (already through q) on db, a *sql.DB, a *sql.Tx or
// the write connection, as a statement prepared once and kept.
func (s *sqlStore) execKept(ctx context.Context, db execer, query string, args ...any) (sql.Result, error) {
	if w, ok := db.(*writeConn); ok {
		stmt, err := w.prepared(ctx, query)
		if err != nil {
			return nil, err
		}
		return stmt.ExecContext(ctx, args...)
	}
	stmt, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx, ok := db.(*sql.Tx); ok {
		// On the transaction's connection the statement is prepared once
		// and then found again (database/sql keeps it per connection).
		return tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	}
	return stmt.ExecContext(ctx, args...)
}

// prepared returns the kept statement of query, preparing it the first time.
func (s *sqlStore) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.stmts.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if kept, loaded := s.stmts.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return kept.(*sql.Stmt), nil
	}
	return stmt, nil
}

// migrate applies the embedded migrations of dir.
func migrate(ctx context.Context, db *sql.DB, dialect goose.Dialect, dir string, opts ...goose.ProviderOption) error {
	sub, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, db, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// q rewrites a query's ? placeholders for the database.
func (s *sqlStore) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// metaColumns are a record's columns but its request and result: what
// Head, List and the event streams read (a result may be megabytes, and a
// read never loads more than it sends).
const metaColumns = `id, caller, status, async, outbound, retry, callback_url, owner, attempts,
	cancel_requested, created_at, started_at, finished_at, callback_state, callback_attempts, callback_reason, callback_owner,
	traceparent, callback_sent`

// columns are all of a record's columns: its request and result last.
const columns = metaColumns + `, request, result`

// micros is t in Unix microseconds, or NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

type scanner interface{ Scan(dest ...any) error }

// scanMeta scans metaColumns, then more.
func scanMeta(row scanner, more ...any) (*Execution, error) {
	var (
		e                         Execution
		owner, cbOwner            sql.NullString
		created, started, finishd sql.NullInt64
		cbAttempts                string
	)
	dest := []any{&e.ID, &e.Caller, &e.Status, &e.Async, &e.Outbound, &e.Retry, &e.CallbackURL,
		&owner, &e.Attempts, &e.CancelRequested, &created, &started, &finishd,
		&e.Callback.State, &cbAttempts, &e.Callback.Reason, &cbOwner, &e.Trace, &e.Callback.Sent}
	err := row.Scan(append(dest, more...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.Owner = owner.String
	e.Callback.Owner = cbOwner.String
	e.Callback.Attempts = []execution.CallbackAttempt{}
	if err := json.Unmarshal([]byte(cbAttempts), &e.Callback.Attempts); err != nil {
		return nil, fmt.Errorf("execution %s: callback attempts: %w", e.ID, err)
	}
	e.CreatedAt, e.StartedAt, e.FinishedAt = fromMicros(created), fromMicros(started), fromMicros(finishd)
	return &e, nil
}

// scanExecution scans columns: the result is kept as the JSON it is
// stored as (ResultJSON), not decoded.
func scanExecution(row scanner, more ...any) (*Execution, error) {
	var req, res sql.NullString
	e, err := scanMeta(row, append([]any{&req, &res}, more...)...)
	if err != nil {
		return nil, err
	}
	if req.Valid {
		e.Request = []byte(req.String)
	}
	if res.Valid {
		e.ResultJSON = json.RawMessage(res.String)
	}
	return e, nil
}

func nullString(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func (s *sqlStore) Create(ctx context.Context, e *Execution) error {
	created, err := s.createIn(ctx, s.db, e)
	if err == nil && !created {
		err = ErrExists
	}
	return err
}

func (s *sqlStore) Get(ctx context.Context, caller, id string) (*Execution, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+metaColumns+`, result FROM executions WHERE id = ? AND caller = ?`), id, caller)
	var res sql.NullString
	e, err := scanMeta(row, &res)
	if err == nil && res.Valid {
		e.ResultJSON = json.RawMessage(res.String)
	}
	return e, err
}

func (s *sqlStore) Head(ctx context.Context, caller, id string) (*Execution, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+metaColumns+` FROM executions WHERE id = ? AND caller = ?`), id, caller)
	return scanMeta(row)
}

func (s *sqlStore) List(ctx context.Context, caller string, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	before := int64(1<<63 - 1)
	if q.Cursor != "" {
		var err error
		if before, err = s.decodeCursor(caller, q.Cursor); err != nil {
			return Page{}, err
		}
	}
	query := `SELECT ` + metaColumns + `, seq FROM executions WHERE caller = ? AND seq < ?`
	args := []any{caller, before}
	if q.Status != "" {
		query += ` AND status = ?`
		args = append(args, q.Status)
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	var page Page
	var last int64
	for rows.Next() {
		if len(page.Executions) == limit {
			page.Next = s.encodeCursor(caller, last)
			break
		}
		var seq int64
		e, err := scanMeta(rows, &seq)
		if err != nil {
			return Page{}, err
		}
		last = seq
		page.Executions = append(page.Executions, e)
	}
	return page, rows.Err()
}

func (s *sqlStore) CountQueued(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM executions WHERE status = `+sqlQueued)).Scan(&n)
	return n, err
}

func (s *sqlStore) Finish(ctx context.Context, id, owner string, status Status, res *execution.Result, last []Event, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	owned, err := s.finishIn(ctx, tx, id, &Ending{Owner: owner, Status: status, Result: res, At: now}, last)
	if err != nil {
		return err
	}
	if !owned {
		return ErrNotOwner
	}
	return tx.Commit()
}

func (s *sqlStore) Cancel(ctx context.Context, caller, id string, now time.Time) (*Execution, error) {
	// A queued one is cancelled at once; failing that, a running one is
	// asked to stop (it may have been claimed in between).
	n, err := s.exec(ctx, `UPDATE executions SET status = ?, finished_at = ?, request = NULL, `+callbackDue+`
		WHERE id = ? AND caller = ? AND status = ?`, Cancelled, now.UnixMicro(), id, caller, Queued)
	if err == nil && n == 0 {
		n, err = s.exec(ctx, `UPDATE executions SET cancel_requested = TRUE
			WHERE id = ? AND caller = ? AND status = ?`, id, caller, Running)
	}
	if err != nil {
		return nil, err
	}
	e, err := s.Get(ctx, caller, id)
	if err == nil && n == 0 {
		err = ErrFinal
	}
	return e, err
}

// exec runs a statement and returns how many rows it changed.
func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	r, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (s *sqlStore) CancelRequests(ctx context.Context, owner string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM executions
		WHERE owner = ? AND status = `+sqlRunning+` AND cancel_requested`), owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (s *sqlStore) Lease(ctx context.Context, owner string, expires time.Time, renew bool) error {
	if !renew {
		_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gateway_leases (owner, expires_at) VALUES (?, ?)
			ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at`), owner, expires.UnixMicro())
		return err
	}
	r, err := s.db.ExecContext(ctx, s.q(`UPDATE gateway_leases SET expires_at = ? WHERE owner = ?`), expires.UnixMicro(), owner)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNoLease
	}
	return nil
}

func (s *sqlStore) Release(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gateway_leases WHERE owner = ?`), owner)
	if err == nil {
		_, err = s.db.ExecContext(ctx, s.q(`DELETE FROM key_slots WHERE owner = ?`), owner)
	}
	return err
}

func (s *sqlStore) Close() error {
	werr := s.closeWriteConn()
	s.stmts.Range(func(_, stmt any) bool {
		stmt.(*sql.Stmt).Close()
		return true
	})
	err := errors.Join(werr, s.db.Close())
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}
