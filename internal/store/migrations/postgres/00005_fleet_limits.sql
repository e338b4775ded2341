-- +goose Up
-- Each API key's quotas, counted by every gateway on the database together.
-- key_rates: the executions a key started in each quota window (window_start
-- in Unix microseconds), for quota.requests as a sliding window.
CREATE TABLE key_rates (
    caller       TEXT   NOT NULL,
    window_start BIGINT NOT NULL,
    started      BIGINT NOT NULL,
    PRIMARY KEY (caller, window_start)
);
-- key_slots: one row per synchronous execution running, by key and by the
-- gateway running it, for quota.concurrency (queued executions running count
-- as their records say).
CREATE TABLE key_slots (
    id     TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    owner  TEXT NOT NULL
);
CREATE INDEX key_slots_caller ON key_slots (caller);
CREATE INDEX key_slots_owner ON key_slots (owner);

-- +goose Down
DROP TABLE key_slots;
DROP TABLE key_rates;
