-- +goose Up
-- Started OAuth2 flows (issue 17, vault/oauth2_flow.go): an authorization
-- (Authorization Code + PKCE) waiting for the provider's redirect back, or
-- a device flow waiting for the user's approval. A row lives until its
-- completion takes it (authorizations are single use), or expires
-- (vault.OAuth2FlowTTL, 10 minutes; deleted at the user's next start).
-- state_hash is the SHA-256 of the state (the state itself is never
-- stored); session_key binds a dashboard-started flow to its sign-in
-- session ('' when started through the API); sealed_verifier is the PKCE
-- verifier sealed under the master key. Nothing here gets a token. Times
-- are unix microseconds.
CREATE TABLE oauth2_flows (
    id               TEXT NOT NULL PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_id        TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('authorization_code', 'device_code')),
    state_hash       BLOB UNIQUE,
    session_key      TEXT NOT NULL DEFAULT '',
    redirect_url     TEXT NOT NULL DEFAULT '',
    sealed_verifier  BLOB,
    user_code        TEXT NOT NULL DEFAULT '',
    verification_uri TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL CHECK (status IN ('pending', 'connected', 'failed')),
    message          TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK (kind <> 'authorization_code' OR (state_hash IS NOT NULL AND sealed_verifier IS NOT NULL AND redirect_url <> ''))
) STRICT;
CREATE INDEX oauth2_flows_user_expires ON oauth2_flows (user_id, expires_at);
