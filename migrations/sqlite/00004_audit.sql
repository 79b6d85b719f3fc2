-- +goose Up
-- The audit trail (vault/audit.go): one hash chain of events, ordered by
-- seq, from 1 without gaps. Rows are append-only: the triggers below let an
-- insert only follow the chain's head (and move the head to it), refuse
-- every update, and let a delete take only rows before the chain's anchor,
-- which only prune moves forward. They guard against mistakes; `envvault
-- audit verify` is what detects tampering, triggers dropped or not.

CREATE TABLE audit_events (
    seq         INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    time        INTEGER NOT NULL, -- unix microseconds, UTC
    user_id     TEXT,             -- NULL for an event of no user (a failed sign-in)
    token_id    TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    client_addr TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    -- Names, ids, versions: never a value or a token.
    details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details) AND json_type(details) = 'object'),
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
-- GET /v1/audit: a user's events newest first, and by target.
CREATE INDEX audit_events_user_seq ON audit_events (user_id, seq);
CREATE INDEX audit_events_user_target_seq ON audit_events (user_id, target_id, seq);

-- The chain's state, one row: its last event (seq, hash), and its anchor,
-- the oldest event kept (first_seq; seq + 1 when none is) and the hash that
-- event follows (anchor_hash).
CREATE TABLE audit_head (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    first_seq   INTEGER NOT NULL,
    anchor_hash BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash, first_seq, anchor_hash) VALUES (1, 0, x'', 1, x'');

-- +goose StatementBegin
CREATE TRIGGER audit_events_follow_head BEFORE INSERT ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_head WHERE seq = NEW.seq - 1 AND hash = NEW.prev_hash)
BEGIN
    SELECT RAISE(ABORT, 'audit_events: a new row must follow the head of the chain');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_move_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_prune_only BEFORE DELETE ON audit_events
WHEN OLD.seq >= (SELECT first_seq FROM audit_head)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: only rows before the anchor may be deleted (envvault audit prune)');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq OR NEW.first_seq < OLD.first_seq OR NEW.first_seq > NEW.seq + 1
BEGIN
    SELECT RAISE(ABORT, 'audit_head only moves forward');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_head_keep BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head is the state of the audit chain and is never deleted');
END;
-- +goose StatementEnd
