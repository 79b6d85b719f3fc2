-- +goose Up
-- Tasks and their stored, masked logs (orchestrator.Store). A task outlives
-- its profile: profile_id is plain text, not a foreign key, and the store
-- checks at insert that the profile is the task's user's. It does not
-- outlive its user.

CREATE TABLE tasks (
    id                TEXT NOT NULL PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile_id        TEXT NOT NULL,
    prompt            TEXT NOT NULL,
    status            TEXT NOT NULL
        CHECK (status IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'stopped')),
    exit_code         INTEGER,
    container_id      TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    -- [{name, source, secret_id, scope, version}], never a value.
    env_sources       TEXT NOT NULL DEFAULT '[]'
        CHECK (json_valid(env_sources) AND json_type(env_sources) = 'array'),
    worker            TEXT NOT NULL DEFAULT '',
    attempt           INTEGER NOT NULL CHECK (attempt >= 1),
    stop_requested    INTEGER NOT NULL DEFAULT 0 CHECK (stop_requested IN (0, 1)),
    restart_requested INTEGER NOT NULL DEFAULT 0 CHECK (restart_requested IN (0, 1)),
    -- The seq of the last log chunk ever appended. Chunks take their seq
    -- from it, so a seq is never reused, even after the logs are cleared.
    last_log_seq      INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER
) STRICT;
-- The queue: ClaimTask takes the oldest queued task. Partial, so finished
-- tasks, the bulk of the table, are not in it.
CREATE INDEX tasks_queue ON tasks (created_at, id) WHERE status = 'queued';
-- A user's list, newest first (keyset on created_at, id); also the user's
-- cascade.
CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, id DESC);
-- ActiveTasks, of one worker or of all.
CREATE INDEX tasks_active ON tasks (worker, created_at, id) WHERE status IN ('starting', 'running');

CREATE TABLE task_logs (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    data    BLOB NOT NULL,
    PRIMARY KEY (task_id, seq)
) STRICT, WITHOUT ROWID;
