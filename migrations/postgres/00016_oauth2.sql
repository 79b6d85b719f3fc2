-- +goose Up
-- OAuth2 secrets (issue 17, vault/oauth2.go). secrets.kind says what a
-- secret holds: 'value' (a NAME=value secret, as before) or 'oauth2' (a
-- connection to an OAuth2 provider, whose sealed value is the client
-- secret; tasks receive an access token).
ALTER TABLE secrets ADD COLUMN kind text NOT NULL DEFAULT 'value'
    CONSTRAINT secrets_kind_check CHECK (kind IN ('value', 'oauth2'));

-- One row per oauth2 secret: its readable settings (JSON, never a
-- secret), its state, and its tokens (access, refresh, expiry as one
-- JSON document) sealed under a data key of their own, bound to the user
-- and the secret (NULL until the first token). Refreshes rewrite this row
-- only: they make no version of the secret. Key rotation re-wraps
-- sealed_key (vault/rotate.go).
CREATE TABLE oauth2_connections (
    secret_id     text COLLATE "C" NOT NULL,
    user_id       text COLLATE "C" NOT NULL,
    settings      jsonb NOT NULL,
    state         text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    refreshable   boolean NOT NULL DEFAULT false,
    expires_at    timestamptz,
    sealed_tokens bytea,
    sealed_key    bytea,
    master_key_id text,
    connected_at  timestamptz,
    refreshed_at  timestamptz,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT oauth2_connections_pkey PRIMARY KEY (secret_id),
    CONSTRAINT oauth2_connections_secret_id_fkey FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE,
    CONSTRAINT oauth2_connections_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT oauth2_connections_state_check CHECK (state IN ('pending', 'connected', 'needs_reconnect')),
    CONSTRAINT oauth2_connections_settings_check CHECK (jsonb_typeof(settings) = 'object'),
    CONSTRAINT oauth2_connections_sealed_check CHECK ((sealed_tokens IS NULL) = (sealed_key IS NULL)
        AND (sealed_key IS NULL) = (master_key_id IS NULL))
);
-- Key rotation and the data-key counts per master key.
CREATE INDEX oauth2_connections_master_key_id ON oauth2_connections (master_key_id) WHERE master_key_id IS NOT NULL;

-- Row-level security (see 00005): the user's own rows; start-up counts and
-- key rotation re-wraps the data keys of every user in system mode.
ALTER TABLE oauth2_connections ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth2_connections_own ON oauth2_connections
    USING (user_id = current_setting('envvault.user_id', true));
CREATE POLICY oauth2_connections_system_read ON oauth2_connections FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');
CREATE POLICY oauth2_connections_system_rewrap ON oauth2_connections FOR UPDATE
    USING (current_setting('envvault.system', true) = 'on')
    WITH CHECK (current_setting('envvault.system', true) = 'on');

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
GRANT SELECT, INSERT, UPDATE, DELETE ON oauth2_connections TO envvault_app;
