package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ErrLimited is a key over its quota: CountStart (its executions started
// in the window) or HoldSlot (its executions running).
var ErrLimited = errors.New("the caller is over its quota")

// slotLockClass, with the caller's hash, serializes one caller's HoldSlot
// calls on PostgreSQL; each also holds claimLock shared, so a Claim (which
// holds it exclusively) counts the slots every earlier HoldSlot left, and
// a HoldSlot the executions every earlier Claim started.
const slotLockClass = 0x6478

func (s *sqlStore) Shared() bool { return s.postgres }

func (s *sqlStore) CountStart(ctx context.Context, caller string, now time.Time, window time.Duration, limit int) error {
	start := now.Truncate(window)
	// The window before counts for the share of it that the last window's
	// length still covers, left of length (a sliding window, as
	// go-chi/httprate counts), in milliseconds: integer arithmetic that
	// both databases do alike.
	left, length := max(0, (window-now.Sub(start)).Milliseconds()), max(1, window.Milliseconds())
	prev := start.Add(-window).UnixMicro()
	// One statement: the row lock of the key's window serializes gateways,
	// and the count and the increment are one step.
	var started int64
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO key_rates (caller, window_start, started)
		SELECT ?, CAST(? AS BIGINT), 1
		WHERE COALESCE((SELECT p.started FROM key_rates p WHERE p.caller = ? AND p.window_start = ?), 0) * ? / ? + 1 <= ?
		ON CONFLICT (caller, window_start) DO UPDATE SET started = key_rates.started + 1
		WHERE COALESCE((SELECT p.started FROM key_rates p WHERE p.caller = ? AND p.window_start = ?), 0) * ? / ? + key_rates.started + 1 <= ?
		RETURNING started`),
		caller, start.UnixMicro(), caller, prev, left, length, limit,
		caller, prev, left, length, limit).Scan(&started)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrLimited
	}
	return err
}

func (s *sqlStore) HoldSlot(ctx context.Context, caller, id, owner string, limit int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2, hashtext($3))`,
			int64(claimLock), slotLockClass, caller); err != nil {
			return err
		}
	}
	r, err := tx.ExecContext(ctx, s.q(`INSERT INTO key_slots (id, caller, owner) SELECT ?, ?, ?
		WHERE (SELECT COUNT(*) FROM key_slots WHERE caller = ?)
		    + (SELECT COUNT(*) FROM executions WHERE status = `+sqlRunning+` AND async = ? AND caller = ?) < ?`),
		id, caller, owner, caller, true, caller, limit)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrLimited
	}
	return tx.Commit()
}

func (s *sqlStore) FreeSlot(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM key_slots WHERE id = ?`), id)
	return err
}

func (s *sqlStore) PurgeRates(ctx context.Context, before time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM key_rates WHERE window_start < ?`), before.UnixMicro())
	return err
}

// freeAbandonedSlots frees the slots of the gateways that hold no lease:
// they stopped, or died and their lease expired.
func (s *sqlStore) freeAbandonedSlots(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM key_slots WHERE owner NOT IN (SELECT owner FROM gateway_leases)`)
	return err
}
