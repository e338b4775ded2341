package executions

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/tracing"
)

// eventsPage is how many stored events one read returns.
const eventsPage = 256

// Get returns c's record id with its result, as stored (execution.Service).
func (s *Service) Get(ctx context.Context, c execution.Caller, id string) (*execution.StoredRecord, error) {
	if s.store == nil {
		return nil, notFound(id)
	}
	done, err := s.limiter.read(c)
	if err != nil {
		return nil, err
	}
	defer done()
	e, err := s.store.Get(ctx, c.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	return storedRecord(e), nil
}

// List returns a page of c's records (execution.Service).
func (s *Service) List(ctx context.Context, c execution.Caller, q execution.ListQuery) (execution.RecordList, error) {
	if s.store == nil {
		return execution.RecordList{}, execution.NewProblem(execution.ProblemNotFound, "executions are not recorded here")
	}
	query, problems := listQuery(q)
	if problems != nil {
		return execution.RecordList{}, execution.InvalidRequest(problems)
	}
	done, err := s.limiter.read(c)
	if err != nil {
		return execution.RecordList{}, err
	}
	defer done()
	page, err := s.store.List(ctx, c.Name, query)
	if errors.Is(err, store.ErrBadCursor) {
		return execution.RecordList{}, execution.InvalidRequest([]execution.FieldProblem{{Field: "cursor", Code: fieldInvalid, Detail: "cursor is not one this API returned"}})
	}
	if err != nil {
		return execution.RecordList{}, err
	}
	out := execution.RecordList{Executions: make([]execution.Record, 0, len(page.Executions)), Next: page.Next}
	for _, e := range page.Executions {
		out.Executions = append(out.Executions, recordOf(e, false))
	}
	return out, nil
}

// listQuery checks a list's status, limit and cursor.
func listQuery(q execution.ListQuery) (store.Query, []execution.FieldProblem) {
	out := store.Query{Status: store.Status(q.Status), Cursor: q.Cursor}
	var problems []execution.FieldProblem
	if q.Status != "" && !out.Status.Valid() {
		problems = append(problems, execution.FieldProblem{Field: "status", Code: fieldInvalid,
			Detail: "status must be queued, running, finished or cancelled"})
	}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > 100 {
			problems = append(problems, execution.FieldProblem{Field: "limit", Code: fieldInvalid, Detail: "limit must be an integer from 1 to 100"})
		}
		out.Limit = n
	}
	return out, problems
}

// Cancel cancels c's execution id (execution.Service).
func (s *Service) Cancel(ctx context.Context, c execution.Caller, id string) (*execution.StoredRecord, bool, error) {
	if s.store == nil {
		return nil, false, notFound(id)
	}
	e, err := s.store.Head(ctx, c.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, notFound(id)
	}
	if err != nil {
		return nil, false, err
	}
	if !e.Async && !e.Status.Final() {
		return nil, false, execution.NewProblem(execution.ProblemNotCancellable, "a synchronous execution is cancelled by closing its request")
	}
	e, err = s.store.Cancel(ctx, e.Caller, e.ID, time.Now())
	if errors.Is(err, store.ErrFinal) {
		return nil, false, execution.NewProblem(execution.ProblemNotCancellable, "the execution has ended")
	}
	if err != nil {
		return nil, false, err
	}
	running := e.Status == store.Running
	if running {
		s.running.cancel(e.ID, errCancelled)
	} else {
		s.broker.notify(e.ID)
		s.ended(e)
	}
	return storedRecord(e), running, nil
}

// Follow sends c's execution's events (execution.Service). Its status is
// read before its events: the writer stores an execution's events before
// its end, so once a final status has been seen, the events read after it
// are all there are.
func (s *Service) Follow(ctx context.Context, c execution.Caller, id string, after int64, send func(execution.EventRecord) error, idle func() error) error {
	if s.store == nil {
		return notFound(id)
	}
	e, err := s.store.Head(ctx, c.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(id)
	}
	if err != nil {
		return err
	}
	done, err := s.limiter.stream(c)
	if err != nil {
		return err
	}
	defer done()
	if idle != nil {
		if err := idle(); err != nil {
			return err
		}
	}
	poll := time.NewTicker(s.opts.Records.Poll)
	defer poll.Stop()
	for {
		changed := s.broker.wait(e.ID)
		final := e.Status.Final()
		evs, err := s.store.Events(ctx, e.ID, after, eventsPage)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := send(execution.EventRecord{ID: ev.Seq, Type: ev.Type, Data: ev.Data}); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(evs) == eventsPage {
			continue
		}
		if final {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.handedOff:
			return errLeaving
		case <-changed:
		case <-poll.C:
			if idle != nil {
				if err := idle(); err != nil {
					return err
				}
			}
		}
		if e, err = s.store.Head(ctx, e.Caller, e.ID); err != nil {
			return err
		}
	}
}

func notFound(id string) *execution.Problem {
	return execution.NewProblem(execution.ProblemNotFound, "no execution "+strconv.Quote(id))
}

// storedRecord renders a record with its result.
func storedRecord(e *store.Execution) *execution.StoredRecord {
	return &execution.StoredRecord{Record: recordOf(e, true), ResultJSON: e.ResultJSON}
}

// recordOf renders a record; list pages leave the result out.
func recordOf(e *store.Execution, withResult bool) execution.Record {
	rec := execution.Record{ID: e.ID, Status: string(e.Status), Async: e.Async, CallbackURL: e.CallbackURL, CreatedAt: e.CreatedAt,
		TraceID: tracing.TraceID(e.Trace)}
	if !e.StartedAt.IsZero() {
		rec.StartedAt = &e.StartedAt
	}
	if !e.FinishedAt.IsZero() {
		rec.FinishedAt = &e.FinishedAt
	}
	if withResult && e.Status == store.Finished {
		rec.Result = e.Result
	}
	rec.Callback = callbackOf(e)
	return rec
}
