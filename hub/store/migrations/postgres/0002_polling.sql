ALTER TABLE tasks ADD COLUMN next_poll_at DOUBLE PRECISION;
ALTER TABLE tasks ADD COLUMN poll_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until DOUBLE PRECISION;
CREATE INDEX tasks_poll_due ON tasks (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX events_by_received ON events (received_at);
