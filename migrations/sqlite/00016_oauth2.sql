-- +goose Up
-- OAuth2 secrets (issue 17, vault/oauth2.go). secrets.kind says what a
-- secret holds: 'value' (a NAME=value secret, as before) or 'oauth2' (a
-- connection to an OAuth2 provider, whose sealed value is the client
-- secret; tasks receive an access token).
ALTER TABLE secrets ADD COLUMN kind TEXT NOT NULL DEFAULT 'value' CHECK (kind IN ('value', 'oauth2'));

-- One row per oauth2 secret: its readable settings (JSON, never a
-- secret), its state, and its tokens (access, refresh, expiry as one JSON
-- document) sealed under a data key of their own, bound to the user and
-- the secret (NULL until the first token). Refreshes rewrite this row only:
-- they make no version of the secret. Key rotation re-wraps sealed_key.
-- Times are unix microseconds.
CREATE TABLE oauth2_connections (
    secret_id     TEXT NOT NULL PRIMARY KEY REFERENCES secrets (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    settings      TEXT NOT NULL CHECK (json_valid(settings) AND json_type(settings) = 'object'),
    state         TEXT NOT NULL CHECK (state IN ('pending', 'connected', 'needs_reconnect')),
    reason        TEXT NOT NULL DEFAULT '',
    refreshable   INTEGER NOT NULL DEFAULT 0 CHECK (refreshable IN (0, 1)),
    expires_at    INTEGER,
    sealed_tokens BLOB,
    sealed_key    BLOB,
    master_key_id TEXT,
    connected_at  INTEGER,
    refreshed_at  INTEGER,
    updated_at    INTEGER NOT NULL,
    CHECK ((sealed_tokens IS NULL) = (sealed_key IS NULL) AND (sealed_key IS NULL) = (master_key_id IS NULL))
) STRICT;
CREATE INDEX oauth2_connections_master_key_id ON oauth2_connections (master_key_id) WHERE master_key_id IS NOT NULL;
