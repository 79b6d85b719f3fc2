-- +goose Up
-- Env delivery (issue 10): a profile's sandbox may name how its tasks get
-- their env ("stdin": no value in docker inspect; "env": the container's
-- configured env). A profile that names none gets the operator's default,
-- stdin; the profiles saved before this migration keep what they had,
-- env, written here. The table's owner runs migrations and is held by its
-- row-level security (FORCE): lifted for this one statement, in this
-- migration's transaction.
ALTER TABLE profiles NO FORCE ROW LEVEL SECURITY;
UPDATE profiles SET sandbox = sandbox || '{"env_delivery": "env"}'::jsonb
    WHERE NOT sandbox ? 'env_delivery';
ALTER TABLE profiles FORCE ROW LEVEL SECURITY;
