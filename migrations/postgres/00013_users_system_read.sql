-- +goose Up
-- The operator's commands read the users across users (issue 16):
-- `envvault user list`, --user NAME, and user create's check that a name
-- is not taken (vault/user_list.go). They read in system mode
-- (postgres/users_list.go), which sees no user row without this policy.
CREATE POLICY users_system_read ON users FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');
