-- +goose Up
-- STRICT tables: SQLite refuses a value of the wrong type instead of storing
-- it as it comes. Times are INTEGER unix microseconds (UTC), so they
-- round-trip exactly. Text compares byte by byte (BINARY), the order Go's
-- sort and PostgreSQL's "C" collation use, so lists and keyset cursors agree
-- across stores. Foreign keys need PRAGMA foreign_keys=on, which the store
-- sets on every connection.

CREATE TABLE users (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE profiles (
    id             TEXT NOT NULL PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    image          TEXT NOT NULL,
    command        TEXT NOT NULL CHECK (json_valid(command) AND json_type(command) = 'array'),
    setup_commands TEXT NOT NULL CHECK (json_valid(setup_commands) AND json_type(setup_commands) = 'array'),
    env            TEXT NOT NULL CHECK (json_valid(env) AND json_type(env) = 'object'),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CONSTRAINT profiles_user_name_key UNIQUE (user_id, name),
    -- The parent key of secret_grants' (profile_id, user_id): a grant can
    -- only name a profile of the secret's own user.
    CONSTRAINT profiles_id_user_key UNIQUE (id, user_id)
) STRICT;

CREATE TABLE secrets (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('all', 'agents')),
    description   TEXT NOT NULL DEFAULT '',
    version       INTEGER NOT NULL CHECK (version >= 1),
    sealed_value  BLOB NOT NULL,
    sealed_key    BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
-- One `all` secret per name and user; `agents` secrets of one name are kept
-- apart per profile by secret_grants_profile_name_key.
CREATE UNIQUE INDEX secrets_all_name_key ON secrets (user_id, name) WHERE scope = 'all';
-- Lists (keyset on name, id), SecretsNamed and the per-user scan of
-- SecretsForProfile. Unique because id is: that makes it the parent key of
-- secret_grants' (secret_id, user_id, name).
CREATE UNIQUE INDEX secrets_user_name ON secrets (user_id, name, id);
-- MasterKeyCounts.
CREATE INDEX secrets_master_key_id ON secrets (master_key_id);

CREATE TABLE secret_grants (
    secret_id  TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    -- The secret's name, so the database itself refuses to grant one
    -- profile the same name twice. UpdateSecret writes it; the cascade keeps
    -- it in step even if a row's name changes by any other way.
    name       TEXT NOT NULL,
    PRIMARY KEY (secret_id, profile_id),
    CONSTRAINT secret_grants_profile_name_key UNIQUE (profile_id, name),
    FOREIGN KEY (secret_id, user_id, name) REFERENCES secrets (id, user_id, name)
        ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY (profile_id, user_id) REFERENCES profiles (id, user_id)
        ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE key_checks (
    key_id TEXT NOT NULL PRIMARY KEY,
    sealed BLOB NOT NULL
) STRICT;
