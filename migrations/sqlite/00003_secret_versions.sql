-- +goose Up
-- Secret history: each time a secret's value changes (a new value, or a
-- rollback), the value it replaces is kept here as a numbered version, and
-- the service deletes all but the newest few (vault.Options.KeepVersions) in
-- the same transaction. Deleting a secret deletes its versions (cascade),
-- and so, through secrets, does deleting its user.
--
-- sealed_value, sealed_key and master_key_id mirror the columns of secrets:
-- the value under its own data key, the data key under master key
-- master_key_id. Key rotation re-wraps these data keys too. name is the name
-- the value was sealed under, which its AAD binds: a rename reseals the
-- secret's current value only, so an older version still opens under its own
-- name.
--
-- created_at and actor_token_id say when this version's value was saved and
-- by which API token (NULL when not known: a version saved before history was
-- kept, or without a token). replaced_at and replaced_by_token_id say the
-- same of the change that replaced it, which made the next version.

CREATE TABLE secret_versions (
    secret_id            TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL,
    version              INTEGER NOT NULL CHECK (version >= 1),
    name                 TEXT NOT NULL,
    sealed_value         BLOB NOT NULL,
    sealed_key           BLOB NOT NULL,
    master_key_id        TEXT NOT NULL,
    created_at           INTEGER,
    actor_token_id       TEXT,
    replaced_at          INTEGER NOT NULL,
    replaced_by_token_id TEXT,
    PRIMARY KEY (secret_id, version)
) STRICT;
-- Key rotation and the data-key counts per master key.
CREATE INDEX secret_versions_master_key_id ON secret_versions (master_key_id);
