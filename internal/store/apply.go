package store

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/dynamic-workers/gateway/execution"
)

func (s *sqlStore) Apply(ctx context.Context, writes []Write) ([]error, error) {
	if !s.postgres {
		return s.applySQLite(ctx, writes)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	errs, err := s.applyIn(ctx, tx, writes)
	if err != nil {
		return nil, err
	}
	return errs, tx.Commit()
}

// applyIn applies writes in the transaction that tx runs; a write refused
// for its content (an existing record, another's execution) is its error,
// any other error is returned and the transaction is to be rolled back.
func (s *sqlStore) applyIn(ctx context.Context, tx execer, writes []Write) ([]error, error) {
	errs := make([]error, len(writes))
	for i, w := range writes {
		var err error
		switch {
		case w.Create != nil && w.Finish != nil:
			// The events' bytes are counted with the record's, in its
			// insert: two statements fewer than insertEvents. Small enough,
			// they are stored in it too (inline), not as rows of their own.
			rows := eventRows(w.Events)
			inline := inlineEvents(rows)
			var created bool
			if created, err = s.createEndedIn(ctx, tx, w.Create, w.Finish, inline, rowBytes(rows)); !created {
				errs[i] = ErrExists
			} else if err == nil && inline == nil {
				err = s.insertEventRows(ctx, tx, w.Create.ID, rows)
			}
		case w.Create != nil:
			var created bool
			if created, err = s.createIn(ctx, tx, w.Create); !created {
				errs[i] = ErrExists
			} else if err == nil {
				err = s.insertEvents(ctx, tx, w.Create.ID, w.Events)
			}
		case w.Finish != nil:
			var owned bool
			if owned, err = s.finishIn(ctx, tx, w.ID, w.Finish, w.Events); !owned {
				errs[i] = ErrNotOwner
			}
		default:
			err = s.insertEvents(ctx, tx, w.ID, w.Events)
		}
		if err != nil {
			return nil, err
		}
	}
	return errs, nil
}

// createIn inserts e unless its id exists (then created is false).
func (s *sqlStore) createIn(ctx context.Context, tx execer, e *Execution) (created bool, err error) {
	return s.insertRecord(ctx, tx, e, e.Status, nullString(e.Request), nil, nil, "", nil, 0)
}

// createEndedIn inserts e as it ended, in one statement: what createIn and
// then finishIn would leave, for an execution whose record is written only
// once it has ended (a short synchronous one); eventBytes are the bytes of
// its events, counted with its result's; inline, if not nil, is its events
// stored in the record (inlineEvents), or else they are inserted next.
func (s *sqlStore) createEndedIn(ctx context.Context, tx execer, e *Execution, end *Ending, inline any, eventBytes int) (created bool, err error) {
	result, err := endingResult(end)
	if err != nil {
		return false, err
	}
	callback := ""
	if e.CallbackURL != "" {
		callback = string(CallbackPending)
	}
	return s.insertRecord(ctx, tx, e, end.Status, nil, result, end.At.UnixMicro(), callback, inline, eventBytes)
}

// insertRecord inserts e with the given status, request, result, end time,
// callback state and inline events, unless its id exists (then created is
// false); its result's bytes and extra bytes (of its events) count for its
// caller.
func (s *sqlStore) insertRecord(ctx context.Context, tx execer, e *Execution, status Status, request, result, finishedAt any, callback string, events any, extra int) (created bool, err error) {
	size := extra
	if r, ok := result.(string); ok {
		size += len(r)
	}
	r, err := s.execKept(ctx, tx, s.q(`INSERT INTO executions (`+columns+`, bytes, events)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?, ?, '[]', '', NULL, ?, 0, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
		e.ID, e.Caller, status, e.Async, e.Outbound, e.Retry, e.CallbackURL,
		sql.NullString{String: e.Owner, Valid: e.Owner != ""}, e.Attempts, e.CreatedAt.UnixMicro(), micros(e.StartedAt),
		finishedAt, callback, e.Trace, request, result, size, events)
	if err != nil {
		return false, err
	}
	if n, err := r.RowsAffected(); err != nil || n != 1 {
		return false, err
	}
	if size == 0 {
		return true, nil
	}
	_, err = s.execKept(ctx, tx, s.q(`INSERT INTO caller_usage (caller, bytes) VALUES (?, ?)
		ON CONFLICT (caller) DO UPDATE SET bytes = caller_usage.bytes + excluded.bytes`), e.Caller, size)
	return true, err
}

// endingResult is end's result as stored: its ResultJSON, or its Result
// encoded, or NULL for none.
func endingResult(end *Ending) (any, error) {
	if len(end.ResultJSON) > 0 {
		return string(end.ResultJSON), nil
	}
	return resultJSON(end.Result)
}

// resultJSON is r as stored: JSON text, or NULL for none.
func resultJSON(r *execution.Result) (any, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// finishIn ends a running execution of end.Owner and stores last with it;
// owned is false, and nothing changes, if it is not running under end.Owner.
func (s *sqlStore) finishIn(ctx context.Context, tx execer, id string, end *Ending, last []Event) (owned bool, err error) {
	if end.Status == Queued {
		return s.requeueIn(ctx, tx, id, end.Owner, last)
	}
	result, err := endingResult(end)
	if err != nil {
		return false, err
	}
	size := 0
	if r, ok := result.(string); ok {
		size = len(r)
	}
	r, err := s.execKept(ctx, tx, s.q(`UPDATE executions
		SET status = ?, result = ?, finished_at = ?, request = NULL, bytes = bytes + ?, `+callbackDue+`
		WHERE id = ? AND owner = ? AND status = ?`),
		end.Status, result, end.At.UnixMicro(), size, id, end.Owner, Running)
	if err != nil {
		return false, err
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := s.addUsage(ctx, tx, id, size); err != nil {
		return false, err
	}
	return true, s.insertEvents(ctx, tx, id, last)
}

// requeueIn puts a running execution of owner back in the queue, its
// request kept, and stores last (its restart event) with it: a gateway
// that stops hands it on. The run is not counted against MaxRuns (its
// gateway stopped; it did not die). owned is false, and nothing changes,
// if it is not running under owner.
func (s *sqlStore) requeueIn(ctx context.Context, tx execer, id, owner string, last []Event) (owned bool, err error) {
	r, err := s.execKept(ctx, tx, s.q(`UPDATE executions
		SET status = ?, owner = NULL, started_at = NULL, attempts = attempts - 1
		WHERE id = ? AND owner = ? AND status = ? AND async`),
		Queued, id, owner, Running)
	if err != nil {
		return false, err
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, s.insertEvents(ctx, tx, id, last)
}
