package store

import (
	"context"
	"database/sql"
	"encoding/json"
)

func (s *sqlStore) Apply(ctx context.Context, writes []Write) ([]error, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	errs := make([]error, len(writes))
	for i, w := range writes {
		var err error
		switch {
		case w.Create != nil:
			var created bool
			if created, err = s.createIn(ctx, tx, w.Create); !created {
				errs[i] = ErrExists
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
	return errs, tx.Commit()
}

// createIn inserts e unless its id exists (then created is false).
func (s *sqlStore) createIn(ctx context.Context, tx execer, e *Execution) (created bool, err error) {
	r, err := s.execKept(ctx, tx, s.q(`INSERT INTO executions (`+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, FALSE, ?, ?, NULL, '', '[]', '', NULL) ON CONFLICT (id) DO NOTHING`),
		e.ID, e.Caller, e.Status, e.Async, e.Outbound, nullString(e.Request), e.CallbackURL,
		sql.NullString{String: e.Owner, Valid: e.Owner != ""}, e.Attempts, e.CreatedAt.UnixMicro(), micros(e.StartedAt))
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// finishIn ends a running execution of end.Owner and stores last with it;
// owned is false, and nothing changes, if it is not running under end.Owner.
func (s *sqlStore) finishIn(ctx context.Context, tx execer, id string, end *Ending, last []Event) (owned bool, err error) {
	var result any
	if end.Result != nil {
		b, err := json.Marshal(end.Result)
		if err != nil {
			return false, err
		}
		result = string(b)
	}
	r, err := s.execKept(ctx, tx, s.q(`UPDATE executions
		SET status = ?, result = ?, finished_at = ?, request = NULL, `+callbackDue+`
		WHERE id = ? AND owner = ? AND status = ?`),
		end.Status, result, end.At.UnixMicro(), id, end.Owner, Running)
	if err != nil {
		return false, err
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, s.insertEvents(ctx, tx, id, last)
}
