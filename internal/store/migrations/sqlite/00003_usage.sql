-- +goose Up
-- retry: the request's retry policy ('' auto, 'always', 'never'): whether an
-- execution whose gateway died runs again. outbound now also marks an
-- execution granted capabilities (it may have had side effects).
ALTER TABLE executions ADD COLUMN retry TEXT NOT NULL DEFAULT '';
-- bytes: what the record takes in the store (its result, request and
-- events); caller_usage: the sum per API key, kept in the same transactions,
-- for the per-key storage bound.
ALTER TABLE executions ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
UPDATE executions SET bytes = COALESCE(length(CAST(result AS BLOB)), 0) + COALESCE(length(CAST(request AS BLOB)), 0)
    + (SELECT COALESCE(SUM(length(CAST(data AS BLOB))), 0) FROM execution_events WHERE execution_id = executions.id);
CREATE TABLE caller_usage (
    caller TEXT   PRIMARY KEY,
    bytes  BIGINT NOT NULL
);
INSERT INTO caller_usage (caller, bytes) SELECT caller, SUM(bytes) FROM executions GROUP BY caller;
-- Secrets the gateways sharing the database share: the key that seals list
-- cursors (made by the first gateway to open the store).
CREATE TABLE gateway_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE gateway_secrets;
DROP TABLE caller_usage;
ALTER TABLE executions DROP COLUMN bytes;
ALTER TABLE executions DROP COLUMN retry;
