package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// What a record takes in the store is its bytes: its result and its events
// (a queued request is not counted: it is deleted when the execution ends,
// and the queue's bounds bound it). caller_usage holds the sum per caller.
// Both change in the transaction that stores what they count, so the sum
// is exact, also across gateways.

// addBytes counts n more bytes for record id and its caller.
func (s *sqlStore) addBytes(ctx context.Context, tx execer, id string, n int) error {
	if n == 0 {
		return nil
	}
	if _, err := s.execKept(ctx, tx, s.q(`UPDATE executions SET bytes = bytes + ? WHERE id = ?`), n, id); err != nil {
		return err
	}
	return s.addUsage(ctx, tx, id, n)
}

// addUsage counts n more bytes for the caller of record id.
func (s *sqlStore) addUsage(ctx context.Context, tx execer, id string, n int) error {
	if n == 0 {
		return nil
	}
	_, err := s.execKept(ctx, tx, s.q(`INSERT INTO caller_usage (caller, bytes) SELECT caller, ? FROM executions WHERE id = ?
		ON CONFLICT (caller) DO UPDATE SET bytes = caller_usage.bytes + excluded.bytes`), n, id)
	return err
}

func (s *sqlStore) Usage(ctx context.Context, caller string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(bytes), 0) FROM caller_usage WHERE caller = ?`), caller).Scan(&n)
	return n, err
}

// evictable selects a caller's records Evict may delete, oldest first:
// ended, with no callback still to deliver (it carries the record), and
// not its newest record (a record larger than the whole bound is kept
// until the next one). Its two placeholders are the caller.
const evictable = `caller = ? AND status IN (` + sqlFinished + `, ` + sqlCancelled + `) AND callback_state <> ` + sqlPending + `
	AND seq < (SELECT MAX(seq) FROM executions WHERE caller = ?)`

// evictBatch is how many records one statement of Evict deletes at most.
const evictBatch = 200

func (s *sqlStore) Evict(ctx context.Context, caller string, keep int64) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var used int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(bytes), 0) FROM caller_usage WHERE caller = ?`), caller).Scan(&used); err != nil {
		return 0, err
	}
	evicted := 0
	for used > keep {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, bytes FROM executions WHERE `+evictable+` ORDER BY seq LIMIT ?`), caller, caller, evictBatch)
		if err != nil {
			return 0, err
		}
		var ids []any
		var freed int64
		for rows.Next() && used-freed > keep {
			var id string
			var n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return 0, err
			}
			ids = append(ids, id)
			freed += n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		if len(ids) == 0 {
			break // the rest is running or queued, or has a callback to deliver
		}
		if err := s.deleteRecords(ctx, tx, caller, ids, freed); err != nil {
			return 0, err
		}
		used -= freed
		evicted += len(ids)
	}
	return evicted, tx.Commit()
}

// deleteRecords deletes records ids of caller with their events and takes
// their bytes, freed in all, off the caller's usage.
func (s *sqlStore) deleteRecords(ctx context.Context, tx execer, caller string, ids []any, freed int64) error {
	in := `(?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM execution_events WHERE execution_id IN `+in), ids...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM executions WHERE id IN `+in), ids...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE caller_usage SET bytes = bytes - ? WHERE caller = ?`), freed, caller)
	return err
}

// purgeable selects the records Purge deletes: ended before its one
// placeholder, with no callback still to deliver (it carries the record).
const purgeable = `finished_at < ? AND callback_state <> ` + sqlPending

func (s *sqlStore) Purge(ctx context.Context, before time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	cut := before.UnixMicro()
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE caller_usage SET bytes = bytes - (SELECT COALESCE(SUM(e.bytes), 0)
		FROM executions e WHERE e.caller = caller_usage.caller AND e.finished_at < ? AND e.callback_state <> `+sqlPending+`)`), cut); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM execution_events WHERE execution_id IN
		(SELECT id FROM executions WHERE `+purgeable+`)`), cut); err != nil {
		return 0, err
	}
	r, err := tx.ExecContext(ctx, s.q(`DELETE FROM executions WHERE `+purgeable), cut)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

// probeBytes is how much a probe writes: more than a row that fits in a
// page with room left, so that a full disk or file refuses it.
const probeBytes = 64 << 10

func (s *sqlStore) Probe(ctx context.Context) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "probe_" + hex.EncodeToString(b[:])
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gateway_secrets (name, value) VALUES (?, ?)`),
		name, strings.Repeat("p", probeBytes)); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gateway_secrets WHERE name = ?`), name)
	return err
}
