-- +goose Up
-- Required secret names (issue 13). profiles.required_secrets is the list of
-- {name, description} a profile's tasks need a value for before they start
-- (vault.RequiredSecret), '[]' for none.
ALTER TABLE profiles ADD COLUMN required_secrets TEXT NOT NULL DEFAULT '[]';
