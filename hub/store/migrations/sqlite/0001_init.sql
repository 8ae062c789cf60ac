CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    external_id TEXT,
    parent_id TEXT,
    status TEXT NOT NULL,
    progress INTEGER,
    outputs TEXT,
    actions TEXT,
    error TEXT,
    metadata TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deadline_at REAL,
    last_event_at REAL
);
CREATE UNIQUE INDEX tasks_by_external ON tasks (provider, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX tasks_by_status ON tasks (status);
CREATE INDEX tasks_by_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    seq INTEGER UNIQUE,
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
    received_at REAL NOT NULL,
    raw TEXT,
    dedupe_key TEXT NOT NULL
);
CREATE INDEX events_by_task ON events (task_id, dedupe_key);
CREATE INDEX events_orphaned ON events (provider, provider_task_id) WHERE task_id IS NULL;
