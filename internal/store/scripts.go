package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A script's versions live in the scripts table, per caller and name; see
// migrations/*/00004_scripts.sql.

func (s *sqlStore) PutScript(ctx context.Context, sc *Script, maxBytes int64) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var latest string
	var seq int64
	err = tx.QueryRowContext(ctx, s.q(`SELECT version, seq FROM scripts WHERE caller = ? AND name = ? ORDER BY seq DESC LIMIT 1`),
		sc.Caller, sc.Name).Scan(&latest, &seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, err
	case latest == sc.Version:
		return false, nil // identical to the latest: nothing changes
	}
	// A version stored before becomes the latest again; a new one is added.
	res, err := tx.ExecContext(ctx, s.q(`UPDATE scripts SET seq = ? WHERE caller = ? AND name = ? AND version = ?`),
		seq+1, sc.Caller, sc.Name, sc.Version)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return false, tx.Commit()
	}
	size := int64(len(sc.Meta) + len(sc.Body))
	if maxBytes > 0 {
		// Another gateway may add a version meanwhile; the bound is then
		// passed by at most its versions in flight, as a record's is.
		var used int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(bytes), 0) FROM scripts WHERE caller = ?`), sc.Caller).Scan(&used); err != nil {
			return false, err
		}
		if used+size > maxBytes {
			return false, fmt.Errorf("%w: %d bytes stored, %d more, bound %d", ErrScriptsFull, used, size, maxBytes)
		}
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO scripts (caller, name, version, seq, created_at, meta, body, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		sc.Caller, sc.Name, sc.Version, seq+1, sc.CreatedAt.UnixMicro(), string(sc.Meta), string(sc.Body), size)
	if err != nil {
		return false, err
	}
	return true, tx.Commit()
}

func (s *sqlStore) GetScript(ctx context.Context, caller, name, version string) (*Script, error) {
	query := `SELECT version, created_at, meta, body FROM scripts WHERE caller = ? AND name = ? ORDER BY seq DESC LIMIT 1`
	args := []any{caller, name}
	if version != "" {
		query = `SELECT version, created_at, meta, body FROM scripts WHERE caller = ? AND name = ? AND version = ?`
		args = append(args, version)
	}
	sc := &Script{Caller: caller, Name: name}
	var created int64
	var meta, body string
	err := s.db.QueryRowContext(ctx, s.q(query), args...).Scan(&sc.Version, &created, &meta, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	sc.CreatedAt, sc.Meta, sc.Body = time.UnixMicro(created).UTC(), []byte(meta), []byte(body)
	return sc, nil
}

func (s *sqlStore) ListScripts(ctx context.Context, caller string) ([]*Script, error) {
	return s.scriptHeads(ctx, s.q(`SELECT name, version, created_at, meta FROM scripts s WHERE caller = ?
		AND seq = (SELECT MAX(seq) FROM scripts WHERE caller = s.caller AND name = s.name) ORDER BY name`), caller)
}

func (s *sqlStore) ScriptVersions(ctx context.Context, caller, name string) ([]*Script, error) {
	list, err := s.scriptHeads(ctx, s.q(`SELECT name, version, created_at, meta FROM scripts WHERE caller = ? AND name = ? ORDER BY seq DESC`), caller, name)
	if err == nil && len(list) == 0 {
		return nil, ErrNotFound
	}
	return list, err
}

// scriptHeads runs query, which selects name, version, created_at and meta.
func (s *sqlStore) scriptHeads(ctx context.Context, query, caller string, args ...any) ([]*Script, error) {
	rows, err := s.db.QueryContext(ctx, query, append([]any{caller}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []*Script{}
	for rows.Next() {
		sc := &Script{Caller: caller}
		var created int64
		var meta string
		if err := rows.Scan(&sc.Name, &sc.Version, &created, &meta); err != nil {
			return nil, err
		}
		sc.CreatedAt, sc.Meta = time.UnixMicro(created).UTC(), []byte(meta)
		list = append(list, sc)
	}
	return list, rows.Err()
}

func (s *sqlStore) DeleteScript(ctx context.Context, caller, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM scripts WHERE caller = ? AND name = ?`), caller, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
