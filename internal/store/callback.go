package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// The states and statuses as SQL literals, from their one definition.
//
// A query on queued or running records names the status as a literal, not
// a placeholder, so that SQLite can use the partial index executions_live
// (migration 00007), which holds those records only.
const (
	sqlQueued    = "'" + execution.StatusQueued + "'"
	sqlRunning   = "'" + execution.StatusRunning + "'"
	sqlPending   = "'" + execution.CallbackPending + "'"
	sqlFinished  = "'" + execution.StatusFinished + "'"
	sqlCancelled = "'" + execution.StatusCancelled + "'"
)

// callbackDue is the assignment that makes an ending execution's callback
// pending, if it has a callback URL: part of every statement that ends one.
const callbackDue = `callback_state = CASE WHEN callback_url <> '' THEN ` + sqlPending + ` ELSE callback_state END`

// callbackFree selects pending callbacks no live gateway holds; its one
// placeholder is now.
const callbackFree = `callback_state = ` + sqlPending + ` AND (callback_owner IS NULL OR callback_owner NOT IN
	(SELECT owner FROM gateway_leases WHERE expires_at >= ?))`

func (s *sqlStore) ClaimCallback(ctx context.Context, owner string, now time.Time, skip ...string) (*Execution, error) {
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	at := now.UnixMicro()
	args := []any{owner, at}
	notSkipped := ""
	if len(skip) > 0 {
		notSkipped = ` AND caller NOT IN (?` + strings.Repeat(`, ?`, len(skip)-1) + `)`
		for _, c := range skip {
			args = append(args, c)
		}
	}
	args = append(args, at)
	row := s.db.QueryRowContext(ctx, s.q(`UPDATE executions SET callback_owner = ?
		WHERE seq = (SELECT seq FROM executions WHERE `+callbackFree+notSkipped+` ORDER BY seq LIMIT 1`+lock+`)
		  AND `+callbackFree+`
		RETURNING `+columns), args...)
	e, err := scanExecution(row)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrEmpty
	}
	return e, err
}

func (s *sqlStore) SaveCallback(ctx context.Context, id, owner string, c Callback, release bool) error {
	attempts := c.Attempts
	if attempts == nil {
		attempts = []execution.CallbackAttempt{}
	}
	b, err := json.Marshal(attempts)
	if err != nil {
		return err
	}
	keep := sql.NullString{String: owner, Valid: c.State == CallbackPending && !release}
	sent := max(c.Sent, len(attempts))
	n, err := s.exec(ctx, `UPDATE executions SET callback_state = ?, callback_attempts = ?, callback_reason = ?, callback_owner = ?, callback_sent = ?
		WHERE id = ? AND callback_owner = ? AND callback_state = `+sqlPending,
		c.State, string(b), c.Reason, keep, sent, id, owner)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotOwner
	}
	return nil
}
