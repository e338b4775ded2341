package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// abandoned is a running execution whose owner's lease is gone.
type abandoned struct {
	id, owner       string
	async, outbound bool
	retry           string
	cancelRequested bool
	runs            int // times claimed
}

// MaxRuns bounds how many times an execution is claimed: one that was
// running each time its gateway died (maybe its doing) is not queued again
// past it, but finished as runtime_crashed.
const MaxRuns = 3

// requeue reports whether a is queued again: it may run again (async, not
// cancelled; no network or capabilities allowed, unless its retry policy
// says always; never if it says never) and has not had its MaxRuns.
func (a abandoned) requeue() bool {
	return a.mayRerun() && a.runs < MaxRuns
}

func (a abandoned) mayRerun() bool {
	switch {
	case !a.async || a.cancelRequested || a.retry == execution.RetryNever:
		return false
	case a.retry == execution.RetryAlways:
		return true
	}
	return !a.outbound
}

func (s *sqlStore) Recover(ctx context.Context, now time.Time) (Recovered, error) {
	var out Recovered
	if _, err := s.exec(ctx, `DELETE FROM gateway_leases WHERE expires_at < ?`, now.UnixMicro()); err != nil {
		return out, err
	}
	if err := s.freeAbandonedSlots(ctx); err != nil {
		return out, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, COALESCE(owner, ''), async, outbound, retry, cancel_requested, attempts
		FROM executions WHERE status = `+sqlRunning+` AND (owner IS NULL OR owner NOT IN (SELECT owner FROM gateway_leases))`))
	if err != nil {
		return out, err
	}
	var lost []abandoned
	for rows.Next() {
		var a abandoned
		if err := rows.Scan(&a.id, &a.owner, &a.async, &a.outbound, &a.retry, &a.cancelRequested, &a.runs); err != nil {
			rows.Close()
			return out, err
		}
		lost = append(lost, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	for _, a := range lost {
		done, err := s.recoverOne(ctx, a, now)
		if err != nil {
			return out, err
		}
		switch {
		case !done:
		case a.requeue():
			out.Requeued = append(out.Requeued, a.id)
		default:
			e, err := s.getAny(ctx, a.id)
			if err != nil {
				return out, err
			}
			out.Crashed = append(out.Crashed, e)
		}
	}
	return out, nil
}

// recoverOne requeues or ends one abandoned execution and records the event
// that tells its stream, in one transaction; false if another gateway did
// it first.
func (s *sqlStore) recoverOne(ctx context.Context, a abandoned, now time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var ev execution.Event
	var r sql.Result
	resultBytes := 0
	switch {
	case a.cancelRequested:
		r, err = tx.ExecContext(ctx, s.q(`UPDATE executions SET status = ?, finished_at = ?, request = NULL, `+callbackDue+`
			WHERE id = ? AND COALESCE(owner, '') = ? AND status = ?`), Cancelled, now.UnixMicro(), a.id, a.owner, Running)
	case a.requeue():
		ev = execution.Event{Type: execution.EventRestart, Reason: string(execution.CodeRuntimeCrashed)}
		r, err = tx.ExecContext(ctx, s.q(`UPDATE executions SET status = ?, owner = NULL, started_at = NULL
			WHERE id = ? AND COALESCE(owner, '') = ? AND status = ?`), Queued, a.id, a.owner, Running)
	default:
		res := CrashedResult(a.id)
		if res.Outbound, err = s.announcedCalls(ctx, tx, a.id); err != nil {
			return false, err
		}
		switch {
		case a.mayRerun():
			res.Error.Message = fmt.Sprintf("the gateway stopped while the execution ran, after %d runs of it; it was not run again", a.runs)
		case a.async && a.retry == execution.RetryNever:
			res.Error.Message = "the gateway stopped while the execution ran; its retry policy is never, so it was not run again"
		}
		ev = execution.Event{Type: execution.EventResult, Result: res}
		body, _ := json.Marshal(res)
		resultBytes = len(body)
		r, err = tx.ExecContext(ctx, s.q(`UPDATE executions SET status = ?, finished_at = ?, request = NULL, result = ?, bytes = bytes + ?, `+callbackDue+`
			WHERE id = ? AND COALESCE(owner, '') = ? AND status = ?`), Finished, now.UnixMicro(), string(body), len(body), a.id, a.owner, Running)
	}
	if err != nil {
		return false, err
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := s.addUsage(ctx, tx, a.id, resultBytes); err != nil {
		return false, err
	}
	if ev.Type != "" {
		data, err := json.Marshal(ev)
		if err != nil {
			return false, err
		}
		// A restart voids the events before it; with none there is
		// nothing to void, and the re-run's start comes first.
		having := ""
		if ev.Type == execution.EventRestart {
			having = " HAVING COUNT(*) > 0"
		}
		r, err := tx.ExecContext(ctx, s.q(`INSERT INTO execution_events (execution_id, seq, type, data)
			SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ? FROM execution_events WHERE execution_id = ?`+having),
			a.id, ev.Type, string(data), a.id)
		if err != nil {
			return false, err
		}
		if n, err := r.RowsAffected(); err != nil {
			return false, err
		} else if n > 0 {
			if err := s.addBytes(ctx, tx, a.id, len(data)); err != nil {
				return false, err
			}
		}
	}
	return true, tx.Commit()
}

// announcedCalls are the outbound requests and capability calls stored as
// execution id's events (as its runs announced them), for the result of an
// execution that ended with its gateway: its record lists every call of
// every run, each with its run.
func (s *sqlStore) announcedCalls(ctx context.Context, tx *sql.Tx, id string) ([]execution.Outgoing, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT data FROM execution_events WHERE execution_id = ? AND type = ? ORDER BY seq`),
		id, execution.EventOutbound)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	calls := []execution.Outgoing{}
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var call execution.Outgoing
		if err := json.Unmarshal([]byte(data), &call); err != nil {
			return nil, fmt.Errorf("storage: outbound event of %s: %w", id, err)
		}
		calls = append(calls, call)
	}
	return calls, rows.Err()
}

// getAny returns record id whoever's it is.
func (s *sqlStore) getAny(ctx context.Context, id string) (*Execution, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+columns+` FROM executions WHERE id = ?`), id)
	return scanExecution(row)
}
