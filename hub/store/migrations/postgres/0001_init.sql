-- Same layout as the SQLite store (hub/store/rows.py): JSON values as text, times as epoch
-- seconds. Task ids sort bytewise ("C") so the list cursor means the same on every locale.
CREATE TABLE tasks (
    id TEXT COLLATE "C" PRIMARY KEY,
    provider TEXT NOT NULL,
    external_id TEXT,
    parent_id TEXT,
    status TEXT NOT NULL,
    progress INTEGER,
    outputs TEXT,
    actions TEXT,
    error TEXT,
    metadata TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    deadline_at DOUBLE PRECISION,
    last_event_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX tasks_by_external ON tasks (provider, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX tasks_by_status ON tasks (status);
CREATE INDEX tasks_by_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    seq BIGINT UNIQUE,
    task_id TEXT,
    provider TEXT NOT NULL,
    provider_task_id TEXT,
    type TEXT,
    status TEXT,
    provider_status TEXT,
    progress INTEGER,
    outputs TEXT,
    actions TEXT,
    error TEXT,
    disposition TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    raw TEXT,
    dedupe_key TEXT NOT NULL
);
CREATE INDEX events_by_task ON events (task_id, dedupe_key);
CREATE INDEX events_orphaned ON events (provider, provider_task_id) WHERE task_id IS NULL;

-- One row. Every write transaction locks it first (SELECT … FOR UPDATE), so writes from all
-- replicas are serialized: commit order is seq order and seq has no holes, which is what the
-- dispatcher's gap detection relies on.
CREATE TABLE hub_counters (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_id BIGINT NOT NULL,
    next_seq BIGINT NOT NULL
);
INSERT INTO hub_counters (id, next_id, next_seq) VALUES (1, 1, 1);
