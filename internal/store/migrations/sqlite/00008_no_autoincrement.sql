-- +goose Up
-- executions.seq without AUTOINCREMENT: a new record's seq is then one
-- past the largest in the table instead of one past the largest ever
-- given, which AUTOINCREMENT keeps in sqlite_sequence: a page more that
-- every commit of a record wrote, with a read and an update of it in every
-- insert (about 15 µs of a record's ~130; docs/performance.md). A new
-- record's seq is still above every record's in the table, so the orders
-- that seq gives (lists, the queue, callbacks, eviction) hold as before;
-- only once the newest records are all deleted can their seqs be given
-- again. SQLite changes a table's key only by copying the table: this
-- rebuilds it, with the same columns and indexes (dropping the old table
-- drops its sqlite_sequence row).
CREATE TABLE executions_rebuilt (
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    caller           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    async            BOOLEAN NOT NULL,
    outbound         BOOLEAN NOT NULL,
    request          TEXT,
    callback_url     TEXT    NOT NULL DEFAULT '',
    result           TEXT,
    owner            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    callback_state    TEXT    NOT NULL DEFAULT '',
    callback_attempts TEXT    NOT NULL DEFAULT '[]',
    callback_reason   TEXT    NOT NULL DEFAULT '',
    callback_owner    TEXT,
    retry             TEXT    NOT NULL DEFAULT '',
    bytes             BIGINT  NOT NULL DEFAULT 0,
    traceparent       TEXT    NOT NULL DEFAULT '',
    callback_sent     INTEGER NOT NULL DEFAULT 0,
    events            TEXT
);
INSERT INTO executions_rebuilt (
    seq, id, caller, status, async, outbound, request, callback_url, result, owner, attempts,
    cancel_requested, created_at, started_at, finished_at, callback_state, callback_attempts,
    callback_reason, callback_owner, retry, bytes, traceparent, callback_sent, events)
SELECT
    seq, id, caller, status, async, outbound, request, callback_url, result, owner, attempts,
    cancel_requested, created_at, started_at, finished_at, callback_state, callback_attempts,
    callback_reason, callback_owner, retry, bytes, traceparent, callback_sent, events
FROM executions;
DROP TABLE executions;
ALTER TABLE executions_rebuilt RENAME TO executions;
CREATE INDEX executions_caller ON executions (caller, seq);
CREATE INDEX executions_finished ON executions (finished_at);
CREATE INDEX executions_live ON executions (status, seq) WHERE status = 'queued' OR status = 'running';
CREATE INDEX executions_callback ON executions (callback_state, seq) WHERE callback_state = 'pending';

-- +goose Down
-- (AUTOINCREMENT counts on from the largest seq copied.)
CREATE TABLE executions_rebuilt (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    caller           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    async            BOOLEAN NOT NULL,
    outbound         BOOLEAN NOT NULL,
    request          TEXT,
    callback_url     TEXT    NOT NULL DEFAULT '',
    result           TEXT,
    owner            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    callback_state    TEXT    NOT NULL DEFAULT '',
    callback_attempts TEXT    NOT NULL DEFAULT '[]',
    callback_reason   TEXT    NOT NULL DEFAULT '',
    callback_owner    TEXT,
    retry             TEXT    NOT NULL DEFAULT '',
    bytes             BIGINT  NOT NULL DEFAULT 0,
    traceparent       TEXT    NOT NULL DEFAULT '',
    callback_sent     INTEGER NOT NULL DEFAULT 0,
    events            TEXT
);
INSERT INTO executions_rebuilt (
    seq, id, caller, status, async, outbound, request, callback_url, result, owner, attempts,
    cancel_requested, created_at, started_at, finished_at, callback_state, callback_attempts,
    callback_reason, callback_owner, retry, bytes, traceparent, callback_sent, events)
SELECT
    seq, id, caller, status, async, outbound, request, callback_url, result, owner, attempts,
    cancel_requested, created_at, started_at, finished_at, callback_state, callback_attempts,
    callback_reason, callback_owner, retry, bytes, traceparent, callback_sent, events
FROM executions;
DROP TABLE executions;
ALTER TABLE executions_rebuilt RENAME TO executions;
CREATE INDEX executions_caller ON executions (caller, seq);
CREATE INDEX executions_finished ON executions (finished_at);
CREATE INDEX executions_live ON executions (status, seq) WHERE status = 'queued' OR status = 'running';
CREATE INDEX executions_callback ON executions (callback_state, seq) WHERE callback_state = 'pending';
