-- +goose Up
-- Times are Unix microseconds.
CREATE TABLE executions (
    seq              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    finished_at      BIGINT
);
CREATE INDEX executions_caller ON executions (caller, seq);
CREATE INDEX executions_status ON executions (status, seq);
CREATE INDEX executions_finished ON executions (finished_at);

CREATE TABLE execution_events (
    execution_id TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    type         TEXT   NOT NULL,
    data         TEXT   NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE gateway_leases (
    owner      TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE gateway_leases;
DROP TABLE execution_events;
DROP TABLE executions;
