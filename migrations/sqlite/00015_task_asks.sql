-- +goose Up
-- Secret requests opened by running tasks (see the PostgreSQL migration).
ALTER TABLE secret_requests ADD COLUMN asks TEXT NOT NULL DEFAULT '[]' CHECK (json_type(asks) = 'array');
