-- +goose Up
-- Required secret names (issue 13). profiles.required_secrets is the list of
-- {name, description} a profile's tasks need a value for before they start
-- (vault.RequiredSecret), '[]' for none.
ALTER TABLE profiles ADD COLUMN required_secrets jsonb NOT NULL DEFAULT '[]';
-- What a running task does when a secret it was given changes or is
-- deleted (vault/secret_change.go): keep (stale) or restart.
ALTER TABLE profiles ADD COLUMN on_secret_change text NOT NULL DEFAULT 'keep'
    CHECK (on_secret_change IN ('keep', 'restart'));

-- Secret requests (vault/secret_request.go): a profile's tasks wait for
-- the values of names (names: [{name, description}], never a value); at
-- most one pending request per profile (secret_requests_pending_key), which
-- later tasks join (task_ids). profile_id is plain text, as for tasks: a
-- request outlives its profile in the user's history.
CREATE TABLE secret_requests (
    id          text COLLATE "C" NOT NULL,
    user_id     text COLLATE "C" NOT NULL,
    profile_id  text COLLATE "C" NOT NULL,
    names       jsonb NOT NULL,
    task_ids    jsonb NOT NULL DEFAULT '[]',
    status      text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    answered_at timestamptz,
    CONSTRAINT secret_requests_pkey PRIMARY KEY (id),
    CONSTRAINT secret_requests_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT secret_requests_status_check CHECK (status IN ('pending', 'answered', 'cancelled', 'expired')),
    CONSTRAINT secret_requests_names_check CHECK (jsonb_typeof(names) = 'array'),
    CONSTRAINT secret_requests_task_ids_check CHECK (jsonb_typeof(task_ids) = 'array')
);
CREATE UNIQUE INDEX secret_requests_pending_key ON secret_requests (user_id, profile_id) WHERE status = 'pending';
CREATE INDEX secret_requests_user_created ON secret_requests (user_id, created_at, id);
-- The worker's expiry pass, across users: pending ones only.
CREATE INDEX secret_requests_due ON secret_requests (expires_at, id) WHERE status = 'pending';
-- The worker's release pass, across users: pending ones only.
CREATE INDEX secret_requests_pending ON secret_requests (created_at, id) WHERE status = 'pending';

-- Row-level security (see 00005): the user's own rows; the worker reads
-- the due ones of every user in system mode, and ends each in its user's
-- transaction.
ALTER TABLE secret_requests ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY secret_requests_own ON secret_requests
    USING (user_id = current_setting('envvault.user_id', true));
CREATE POLICY secret_requests_system_read ON secret_requests FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'envvault_app') THEN
        CREATE ROLE envvault_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of the cluster, migrating at once, made it
END
$$;
-- +goose StatementEnd
GRANT SELECT, INSERT, UPDATE ON secret_requests TO envvault_app;

-- Task statuses of secret requests (orchestrator/awaiting.go): a task whose
-- profile lacks a required name waits in awaiting_secrets; one whose
-- request is cancelled ends cancelled.
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'stopped', 'awaiting_secrets', 'cancelled'));
