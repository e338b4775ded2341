package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Limits bound, per caller, the executions running at once: Claim does not
// start a queued execution of a caller that has its limit running: its
// queued executions running (on any gateway), the slots its synchronous
// ones hold (HoldSlot), and Busy.
type Limits struct {
	Default int            // executions a caller may have running; 0: no bound
	Callers map[string]int // per-caller overrides of Default (0: Default)
	// Busy counts, per caller, executions running that hold no slot: a
	// gateway that counts its synchronous executions itself (SQLite: it is
	// the only one) passes them here.
	Busy map[string]int
}

// Bounds bound the queue for Enqueue.
type Bounds struct {
	Total     int // queued executions of every caller; 0: no bound
	PerCaller int // queued executions of the caller submitting; 0: no bound
}

// Errors of Enqueue.
var (
	ErrQueueFull       = errors.New("the queue is full")
	ErrCallerQueueFull = errors.New("the caller has its bound of executions queued")
)

// PostgreSQL advisory locks: claimLock serializes claims across gateways
// (each then counts the running executions every earlier claim left, and
// the slots every HoldSlot left: those hold it shared);
// queueLockClass, with the caller's hash, serializes one caller's
// submissions, so its count of queued executions is exact.
const (
	claimLock      = 0x64775f636c61696d // "dw_claim"
	queueLockClass = 0x6477             // "dw"
)

// unbounded stands for "no bound" in a comparison.
const unbounded = 1<<31 - 1

// sql returns the claim's condition on a candidate q: its caller has fewer
// executions running than its limit; and the condition's arguments.
func (l Limits) sql() (string, []any) {
	// A caller's bound for the store's count: its limit less its Busy.
	limit := func(name string) int {
		n := l.Callers[name]
		if n <= 0 {
			n = l.Default
		}
		if n <= 0 {
			return unbounded
		}
		return max(0, n-l.Busy[name])
	}
	var b strings.Builder
	args := []any{true}
	b.WriteString(` AND (SELECT COUNT(*) FROM executions c WHERE c.status = ` + sqlRunning + ` AND c.async = ? AND c.caller = q.caller)
		+ (SELECT COUNT(*) FROM key_slots k WHERE k.caller = q.caller) < `)
	names := map[string]bool{}
	for name := range l.Callers {
		names[name] = true
	}
	for name := range l.Busy {
		names[name] = true
	}
	if len(names) == 0 {
		b.WriteString(`CAST(? AS BIGINT)`)
		return b.String(), append(args, limit("")) // no caller is named: the default
	}
	b.WriteString(`CASE q.caller`)
	for name := range names {
		b.WriteString(` WHEN ? THEN CAST(? AS BIGINT)`)
		args = append(args, name, limit(name))
	}
	b.WriteString(` ELSE CAST(? AS BIGINT) END`)
	return b.String(), append(args, limit("")) // every other caller: the default
}

func (s *sqlStore) Claim(ctx context.Context, owner string, now time.Time, lim Limits) (*Execution, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(claimLock)); err != nil {
			return nil, err
		}
	}
	bounded, bargs := lim.sql()
	// Among the callers under their limit, the oldest queued execution of
	// the callers with the fewest queued ones running: one caller's backlog
	// does not hold every worker while another's execution waits.
	args := append([]any{Running, owner, now.UnixMicro()}, bargs...)
	args = append(args, true)
	row := tx.QueryRowContext(ctx, s.q(`UPDATE executions
		SET status = ?, owner = ?, attempts = attempts + 1, started_at = ?
		WHERE seq = (SELECT q.seq FROM executions q WHERE q.status = `+sqlQueued+bounded+`
		    ORDER BY (SELECT COUNT(*) FROM executions r WHERE r.status = `+sqlRunning+` AND r.async = ? AND r.caller = q.caller), q.seq
		    LIMIT 1`+lock+`)
		  AND status = `+sqlQueued+`
		RETURNING `+columns+`, (SELECT COALESCE(MAX(seq), 0) FROM execution_events WHERE execution_id = executions.id)`),
		args...)
	var last int64
	e, err := scanExecution(row, &last)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, err
	}
	e.LastEvent = last
	return e, tx.Commit()
}

func (s *sqlStore) Enqueue(ctx context.Context, e *Execution, b Bounds) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, queueLockClass, e.Caller); err != nil {
			return err
		}
	}
	var all, mine int64
	err = tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN caller = ? THEN 1 ELSE 0 END), 0)
		FROM executions WHERE status = `+sqlQueued), e.Caller).Scan(&all, &mine)
	if err != nil {
		return err
	}
	// A full queue is full for everyone (503), whatever the caller's own
	// bound (429) says.
	switch {
	case b.Total > 0 && all >= int64(b.Total):
		return ErrQueueFull
	case b.PerCaller > 0 && mine >= int64(b.PerCaller):
		return ErrCallerQueueFull
	}
	q := *e
	q.Status = Queued
	created, err := s.createIn(ctx, tx, &q)
	if err != nil {
		return err
	}
	if !created {
		return ErrExists
	}
	return tx.Commit()
}
