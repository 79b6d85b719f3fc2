-- +goose Up
-- Secret requests opened by running tasks (issue 13 item 3): asks is the
-- list of {task_id, attempt, names, message, asked_at} of the tasks that
-- asked through their task credential (vault.TaskAsk). An answer restarts
-- each of them (attempt + 1); a waiting task stays in task_ids. Never a
-- value.
ALTER TABLE secret_requests ADD COLUMN asks jsonb NOT NULL DEFAULT '[]';
ALTER TABLE secret_requests ADD CONSTRAINT secret_requests_asks_check CHECK (jsonb_typeof(asks) = 'array');
