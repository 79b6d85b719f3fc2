-- +goose Up
-- Started OAuth2 flows (issue 17, vault/oauth2_flow.go): an authorization
-- (Authorization Code + PKCE) waiting for the provider's redirect back, or
-- a device flow waiting for the user's approval. A row lives until its
-- completion takes it (authorizations are single use), or expires
-- (vault.OAuth2FlowTTL, 10 minutes; deleted at the user's next start).
-- state_hash is the SHA-256 of the state (the state itself is never
-- stored); session_key binds a dashboard-started flow to its sign-in
-- session ('' when started through the API); sealed_verifier is the PKCE
-- verifier sealed under the master key. Nothing here gets a token.
CREATE TABLE oauth2_flows (
    id               text COLLATE "C" NOT NULL,
    user_id          text COLLATE "C" NOT NULL,
    secret_id        text COLLATE "C" NOT NULL,
    kind             text NOT NULL,
    state_hash       bytea,
    session_key      text NOT NULL DEFAULT '',
    redirect_url     text NOT NULL DEFAULT '',
    sealed_verifier  bytea,
    user_code        text NOT NULL DEFAULT '',
    verification_uri text NOT NULL DEFAULT '',
    status           text NOT NULL,
    message          text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT oauth2_flows_pkey PRIMARY KEY (id),
    CONSTRAINT oauth2_flows_state_hash_key UNIQUE (state_hash),
    CONSTRAINT oauth2_flows_secret_id_fkey FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE,
    CONSTRAINT oauth2_flows_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT oauth2_flows_kind_check CHECK (kind IN ('authorization_code', 'device_code')),
    CONSTRAINT oauth2_flows_status_check CHECK (status IN ('pending', 'connected', 'failed')),
    CONSTRAINT oauth2_flows_authorization_check CHECK (kind <> 'authorization_code'
        OR (state_hash IS NOT NULL AND sealed_verifier IS NOT NULL AND redirect_url <> ''))
);
CREATE INDEX oauth2_flows_user_expires ON oauth2_flows (user_id, expires_at);

-- Row-level security (see 00005): the user's own rows only; no system mode.
ALTER TABLE oauth2_flows ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth2_flows_own ON oauth2_flows
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
GRANT SELECT, INSERT, UPDATE, DELETE ON oauth2_flows TO envvault_app;
