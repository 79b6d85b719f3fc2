-- +goose Up
-- API tokens as a resource (issue 11): a name, a scope, the last use
-- (written at most once a minute, vault.TokenTouchInterval) and an
-- optional expiry, times as unix microseconds. Tokens made before this
-- migration become full tokens named "initial".
ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT 'initial';
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'read', 'tasks'));
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
CREATE INDEX tokens_user_created ON tokens (user_id, created_at, id);

-- Dashboard sessions, server-side (see the PostgreSQL migration): id is
-- the SHA-256 (hex) of the cookie's session id; deleting a token deletes
-- its sessions.
CREATE TABLE sessions (
    id           TEXT NOT NULL PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_id     TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_token_id ON sessions (token_id);
CREATE INDEX sessions_user_expires ON sessions (user_id, expires_at);
