-- +goose Up
-- traceparent is the W3C traceparent of the span an execution's trace
-- continues from ('' when tracing is off): a queued execution's spans, and
-- its callback's, join the trace of the request that submitted it.
-- callback_sent counts the callback's attempts started, stored before each
-- is sent, so a delivery resumed by another gateway numbers its attempts
-- on from those (an attempt cut by a crash is never in callback_attempts).
ALTER TABLE executions ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN callback_sent INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN callback_sent;
ALTER TABLE executions DROP COLUMN traceparent;
