-- +goose Up
-- The metrics count the tasks waiting for secrets at every scrape
-- (LiveTaskCounts, issue 13): a partial index of exactly those rows, as
-- tasks_queue and tasks_active are of the queued and active ones, so the
-- count does not grow with the finished tasks kept.
CREATE INDEX tasks_awaiting ON tasks (created_at, id) WHERE status = 'awaiting_secrets';
