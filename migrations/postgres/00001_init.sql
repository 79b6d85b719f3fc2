-- +goose Up
-- Ids and names use the "C" collation: byte order, as Go's sort and SQLite
-- use, so that lists, keyset cursors and sorted profile ids agree across
-- stores and do not depend on the cluster's locale.

CREATE TABLE users (
    id         text COLLATE "C" NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id)
);

CREATE TABLE tokens (
    id         text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE profiles (
    id             text COLLATE "C" NOT NULL,
    user_id        text COLLATE "C" NOT NULL,
    name           text COLLATE "C" NOT NULL,
    image          text NOT NULL,
    command        jsonb NOT NULL,
    setup_commands jsonb NOT NULL,
    env            jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT profiles_pkey PRIMARY KEY (id),
    CONSTRAINT profiles_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT profiles_user_name_key UNIQUE (user_id, name),
    CONSTRAINT profiles_command_check CHECK (jsonb_typeof(command) = 'array'),
    CONSTRAINT profiles_setup_commands_check CHECK (jsonb_typeof(setup_commands) = 'array'),
    CONSTRAINT profiles_env_check CHECK (jsonb_typeof(env) = 'object')
);

CREATE TABLE secrets (
    id            text COLLATE "C" NOT NULL,
    user_id       text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    scope         text NOT NULL,
    description   text NOT NULL DEFAULT '',
    version       integer NOT NULL,
    sealed_value  bytea NOT NULL,
    sealed_key    bytea NOT NULL,
    master_key_id text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT secrets_pkey PRIMARY KEY (id),
    CONSTRAINT secrets_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT secrets_scope_check CHECK (scope IN ('all', 'agents')),
    CONSTRAINT secrets_version_check CHECK (version >= 1)
);
-- One `all` secret per name and user; `agents` secrets of one name are kept
-- apart per profile by secret_grants_profile_name_key.
CREATE UNIQUE INDEX secrets_all_name_key ON secrets (user_id, name) WHERE scope = 'all';
-- Lists (keyset on name, id), SecretsNamed, and the per-user scan of
-- SecretsForProfile.
CREATE INDEX secrets_user_name ON secrets (user_id, name, id);

CREATE TABLE secret_grants (
    secret_id  text COLLATE "C" NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    -- The secret's name, kept in step by UpdateSecret, so the database
    -- itself refuses to grant one profile the same name twice.
    name       text COLLATE "C" NOT NULL,
    CONSTRAINT secret_grants_pkey PRIMARY KEY (secret_id, profile_id),
    CONSTRAINT secret_grants_secret_id_fkey FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE,
    CONSTRAINT secret_grants_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES profiles (id) ON DELETE CASCADE,
    CONSTRAINT secret_grants_profile_name_key UNIQUE (profile_id, name)
);

CREATE TABLE key_checks (
    key_id text NOT NULL,
    sealed bytea NOT NULL,
    CONSTRAINT key_checks_pkey PRIMARY KEY (key_id)
);
