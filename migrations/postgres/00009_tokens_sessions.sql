-- +goose Up
-- API tokens as a resource (issue 11): a name, a scope, the last use
-- (written at most once a minute, vault.TokenTouchInterval) and an
-- optional expiry. Tokens made before this migration (by `envvault user
-- create` or `envvault dev`) become full tokens named "initial".
ALTER TABLE tokens
    ADD COLUMN name text NOT NULL DEFAULT 'initial',
    ADD COLUMN scope text NOT NULL DEFAULT 'full',
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN expires_at timestamptz,
    ADD CONSTRAINT tokens_scope_check CHECK (scope IN ('full', 'read', 'tasks'));
ALTER TABLE tokens ALTER COLUMN name DROP DEFAULT, ALTER COLUMN scope DROP DEFAULT;
-- A user's tokens, oldest first (GET /v1/tokens, the last-full-token rule).
CREATE INDEX tokens_user_created ON tokens (user_id, created_at, id);

-- Dashboard sessions, server-side: the cookie holds the session id (signed),
-- the row says whether it still holds. id is the SHA-256 (hex) of the
-- cookie's random session id, so the table alone cannot make a cookie.
-- Deleting a token deletes its sessions (ON DELETE CASCADE): revoking a
-- token signs its dashboard sessions out. Sign-out deletes the row.
CREATE TABLE sessions (
    id           text COLLATE "C" NOT NULL,
    user_id      text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_id     text COLLATE "C" NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);
CREATE INDEX sessions_token_id ON sessions (token_id);
CREATE INDEX sessions_user_expires ON sessions (user_id, expires_at);

-- Row-level security (see 00005): a session is read, touched and deleted
-- in its user's transaction only (the cookie names the user, signed); no
-- system mode.
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_own ON sessions
    USING (user_id = current_setting('envvault.user_id', true));

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
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO envvault_app;
