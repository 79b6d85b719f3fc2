-- +goose Up
-- Required secret names (issue 13). profiles.required_secrets is the list of
-- {name, description} a profile's tasks need a value for before they start
-- (vault.RequiredSecret), '[]' for none.
ALTER TABLE profiles ADD COLUMN required_secrets TEXT NOT NULL DEFAULT '[]';
-- What a running task does when a secret it was given changes or is
-- deleted (vault/secret_change.go): keep (stale) or restart.
ALTER TABLE profiles ADD COLUMN on_secret_change TEXT NOT NULL DEFAULT 'keep'
    CHECK (on_secret_change IN ('keep', 'restart'));

-- Secret requests (see the PostgreSQL migration); times as unix
-- microseconds.
CREATE TABLE secret_requests (
    id          TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile_id  TEXT NOT NULL,
    names       TEXT NOT NULL CHECK (json_type(names) = 'array'),
    task_ids    TEXT NOT NULL DEFAULT '[]' CHECK (json_type(task_ids) = 'array'),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'cancelled', 'expired')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    answered_at INTEGER
) STRICT;
CREATE UNIQUE INDEX secret_requests_pending_key ON secret_requests (user_id, profile_id) WHERE status = 'pending';
CREATE INDEX secret_requests_user_created ON secret_requests (user_id, created_at, id);
CREATE INDEX secret_requests_due ON secret_requests (expires_at, id) WHERE status = 'pending';
-- The worker's release pass, across users: pending ones only.
CREATE INDEX secret_requests_pending ON secret_requests (created_at, id) WHERE status = 'pending';

-- Task statuses of secret requests (see the PostgreSQL migration). The
-- status CHECK of 00002 is the column's own: the column is replaced by one
-- with the wider CHECK (DROP COLUMN takes its constraint with it; the
-- partial indexes naming it are made again), rather than the table rebuilt,
-- which would have to list every column and would cascade to task_logs.
DROP INDEX tasks_queue;
DROP INDEX tasks_active;
ALTER TABLE tasks ADD COLUMN status_new TEXT NOT NULL DEFAULT 'queued'
    CHECK (status_new IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'stopped', 'awaiting_secrets', 'cancelled'));
UPDATE tasks SET status_new = status;
ALTER TABLE tasks DROP COLUMN status;
ALTER TABLE tasks RENAME COLUMN status_new TO status;
CREATE INDEX tasks_queue ON tasks (created_at, id) WHERE status = 'queued';
CREATE INDEX tasks_active ON tasks (worker, created_at, id) WHERE status IN ('starting', 'running');
