-- +goose Up
-- Env delivery (issue 10): a profile's sandbox may name how its tasks get
-- their env ("stdin": no value in docker inspect; "env": the container's
-- configured env). A profile that names none gets the operator's default,
-- stdin; the profiles saved before this migration keep what they had,
-- env, written here.
UPDATE profiles SET sandbox = json_set(sandbox, '$.env_delivery', 'env')
    WHERE json_extract(sandbox, '$.env_delivery') IS NULL;
