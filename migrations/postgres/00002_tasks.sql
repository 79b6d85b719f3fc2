-- +goose Up
-- Tasks and their stored, masked logs (orchestrator.Store). A task outlives
-- its profile: profile_id is plain text, not a foreign key, and the store
-- checks at insert that the profile is the task's user's. It does not
-- outlive its user. Ids use the "C" collation, as in 00001, so the keyset
-- tie-break on id orders alike in both stores.

CREATE TABLE tasks (
    id                text COLLATE "C" NOT NULL,
    user_id           text COLLATE "C" NOT NULL,
    profile_id        text COLLATE "C" NOT NULL,
    prompt            text NOT NULL,
    status            text NOT NULL,
    exit_code         integer,
    container_id      text NOT NULL DEFAULT '',
    error             text NOT NULL DEFAULT '',
    -- [{name, source, secret_id, scope, version}], never a value.
    env_sources       jsonb NOT NULL DEFAULT '[]',
    worker            text COLLATE "C" NOT NULL DEFAULT '',
    attempt           integer NOT NULL,
    stop_requested    boolean NOT NULL DEFAULT false,
    restart_requested boolean NOT NULL DEFAULT false,
    -- The seq of the last log chunk ever appended. Chunks take their seq
    -- from it, under the row lock its update takes, so concurrent appends
    -- get distinct, ordered seqs, and a seq is never reused, even after
    -- the logs are cleared.
    last_log_seq      bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT tasks_status_check
        CHECK (status IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'stopped')),
    CONSTRAINT tasks_env_sources_check CHECK (jsonb_typeof(env_sources) = 'array'),
    CONSTRAINT tasks_attempt_check CHECK (attempt >= 1)
);
-- The queue: ClaimTask takes the oldest queued task. Partial, so finished
-- tasks, the bulk of the table, are not in it.
CREATE INDEX tasks_queue ON tasks (created_at, id) WHERE status = 'queued';
-- A user's list, newest first (keyset on created_at, id); also the user's
-- cascade.
CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, id DESC);
-- ActiveTasks, of one worker or of all.
CREATE INDEX tasks_active ON tasks (worker, created_at, id) WHERE status IN ('starting', 'running');

CREATE TABLE task_logs (
    task_id text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    data    bytea NOT NULL,
    CONSTRAINT task_logs_pkey PRIMARY KEY (task_id, seq),
    CONSTRAINT task_logs_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT task_logs_seq_check CHECK (seq >= 1)
);
