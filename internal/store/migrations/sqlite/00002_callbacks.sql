-- +goose Up
-- The delivery of a record to its callback_url: '' until the execution
-- ends, then pending (to send; callback_owner is the gateway sending it),
-- delivered or failed. callback_attempts is a JSON array of attempts.
ALTER TABLE executions ADD COLUMN callback_state TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN callback_attempts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE executions ADD COLUMN callback_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN callback_owner TEXT;
CREATE INDEX executions_callback ON executions (callback_state, seq);

-- +goose Down
DROP INDEX executions_callback;
ALTER TABLE executions DROP COLUMN callback_owner;
ALTER TABLE executions DROP COLUMN callback_reason;
ALTER TABLE executions DROP COLUMN callback_attempts;
ALTER TABLE executions DROP COLUMN callback_state;
