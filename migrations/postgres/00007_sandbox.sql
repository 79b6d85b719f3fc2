-- +goose Up
-- Task container hardening (issue 10). profiles.sandbox is what a profile
-- asks beyond the operator's defaults (vault.Sandbox, '{}' for none);
-- tasks.sandbox is what the task's current container got
-- (vault.SandboxSettings), NULL until it starts.
ALTER TABLE profiles ADD COLUMN sandbox jsonb NOT NULL DEFAULT '{}';
ALTER TABLE tasks ADD COLUMN sandbox jsonb;
