-- +goose Up
-- Stored scripts (PUT /scripts/{name}): immutable versions, each named by
-- its content's hash, per API key (caller) and name. seq orders a name's
-- versions: the latest has the highest. meta is what listings show (small);
-- body the code, its dependencies bundled (up to megabytes); bytes what the
-- two take, which a key's scripts are bounded by.
CREATE TABLE scripts (
    caller     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    version    TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    meta       TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    bytes      BIGINT NOT NULL,
    PRIMARY KEY (caller, name, version)
);
CREATE INDEX scripts_by_seq ON scripts (caller, name, seq);

-- +goose Down
DROP TABLE scripts;
