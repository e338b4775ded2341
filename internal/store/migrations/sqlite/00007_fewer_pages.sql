-- +goose Up
-- events: the events of a record written as it ended, when they are few,
-- held in its row (see the store's inline.go) instead of rows of their
-- own; NULL for every other record.
ALTER TABLE executions ADD COLUMN events TEXT;
-- Fewer pages written per record (a commit writes every page it changed to
-- the WAL): indexes that only rare queries need hold only the records those
-- queries look for, so a record that is written ended, with no callback,
-- is in neither.
-- executions_live: the queued and running records (the queue's claims and
-- bounds, the quotas' counts, Recover); their queries name the status as
-- a literal, which a partial index needs.
DROP INDEX executions_status;
CREATE INDEX executions_live ON executions (status, seq) WHERE status = 'queued' OR status = 'running';
-- executions_callback: the callbacks still to deliver.
DROP INDEX executions_callback;
CREATE INDEX executions_callback ON executions (callback_state, seq) WHERE callback_state = 'pending';

-- +goose Down
-- (Events held inline are dropped with the column: going down loses them.)
DROP INDEX executions_callback;
CREATE INDEX executions_callback ON executions (callback_state, seq);
DROP INDEX executions_live;
CREATE INDEX executions_status ON executions (status, seq);
ALTER TABLE executions DROP COLUMN events;
