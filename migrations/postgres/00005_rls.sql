-- +goose Up
-- Row-level security: a second wall behind the store's own
-- "WHERE user_id = $n". Every statement the store issues runs in a
-- transaction that first says whose it is, with a transaction-local
-- setting (postgres/rls.go):
--
--   envvault.user_id = 'usr_…'   the user the transaction is scoped to;
--   envvault.system  = 'on'      one of the few store methods that are
--                                cross-user by nature (a token looked up by
--                                id before its user is known, the task
--                                queue, key rotation, data-key counts).
--
-- A row of a user's table is visible, and writable, only when its user_id
-- is the transaction's user. System mode gets only the commands those
-- methods need, table by table: it reads tokens, reads and re-wraps
-- secrets (and their versions), reads and updates tasks and their logs; it
-- never sees a profile or a grant, never inserts or deletes a secret. With
-- neither setting, a statement sees no row at all.
--
-- FORCE applies the policies to the tables' owner too, so that a
-- deployment with one role for both migrating and serving is still behind
-- the wall. Only superusers and BYPASSRLS roles pass through; the service
-- must connect as neither (see the README, "Row-level security").
--
-- key_checks holds no user's data (one sealed check value per master key)
-- and has no policy.
--
-- The service's role: the login role of DATABASE_URL is made a member of
-- envvault_app (GRANT envvault_app TO <login role>), which gets the
-- privileges it needs here and, by default privileges, on the tables later
-- migrations create. A table of user data added later must enable and
-- force row-level security and get its policies in its own migration;
-- postgres/rls_test.go fails for a table that does not.

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'envvault_app') THEN
        CREATE ROLE envvault_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    -- Roles belong to the cluster: another database of it, migrating at
    -- the same moment, created it first.
    NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO envvault_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO envvault_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO envvault_app', current_schema());
END
$$;
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE, DELETE
    ON users, tokens, profiles, secrets, secret_grants, secret_versions, tasks, task_logs, key_checks
    TO envvault_app;
-- goose's version table, read only: every command applies the migrations
-- at start-up, and as the service role that succeeds when none is pending
-- (and fails, for lack of privileges, when one is: the owner applies it).
GRANT SELECT ON goose_db_version TO envvault_app;

ALTER TABLE users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY users_own ON users
    USING (id = current_setting('envvault.user_id', true));

ALTER TABLE tokens ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tokens_own ON tokens
    USING (user_id = current_setting('envvault.user_id', true));
-- Authentication reads a token by its id to learn whose it is.
CREATE POLICY tokens_system_read ON tokens FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');

ALTER TABLE profiles ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY profiles_own ON profiles
    USING (user_id = current_setting('envvault.user_id', true));

ALTER TABLE secrets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY secrets_own ON secrets
    USING (user_id = current_setting('envvault.user_id', true));
-- Start-up counts data keys per master key; key rotation re-wraps the data
-- keys of every user.
CREATE POLICY secrets_system_read ON secrets FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');
CREATE POLICY secrets_system_rewrap ON secrets FOR UPDATE
    USING (current_setting('envvault.system', true) = 'on')
    WITH CHECK (current_setting('envvault.system', true) = 'on');

ALTER TABLE secret_versions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY secret_versions_own ON secret_versions
    USING (user_id = current_setting('envvault.user_id', true));
-- As for secrets: the data-key counts and key rotation.
CREATE POLICY secret_versions_system_read ON secret_versions FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');
CREATE POLICY secret_versions_system_rewrap ON secret_versions FOR UPDATE
    USING (current_setting('envvault.system', true) = 'on')
    WITH CHECK (current_setting('envvault.system', true) = 'on');

ALTER TABLE secret_grants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY secret_grants_own ON secret_grants
    USING (user_id = current_setting('envvault.user_id', true));

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tasks_own ON tasks
    USING (user_id = current_setting('envvault.user_id', true));
-- Workers claim, update and recover the tasks of every user.
CREATE POLICY tasks_system_read ON tasks FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');
CREATE POLICY tasks_system_update ON tasks FOR UPDATE
    USING (current_setting('envvault.system', true) = 'on')
    WITH CHECK (current_setting('envvault.system', true) = 'on');

-- A log chunk is visible exactly when its task is: the subquery is itself
-- under the policies of tasks (the user's own tasks, or, in system mode,
-- every task). It is correlated, so it costs one lookup of tasks_pkey per
-- chunk read or written.
ALTER TABLE task_logs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY task_logs_of_visible_tasks ON task_logs
    USING (EXISTS (SELECT 1 FROM tasks t WHERE t.id = task_logs.task_id));
