-- +goose Up
-- The audit chain without a lock that writes share (vault/audit_chain.go,
-- postgres/audit_link.go). A write inserts its event unlinked (seq,
-- prev_hash and hash NULL) in its own transaction; a link pass, after the
-- commit, takes audit_head's row lock for a short transaction of its own
-- and links every committed unlinked event, in order of id: it sets seq,
-- prev_hash and hash, and the update trigger checks that the row follows
-- the head and moves the head to it. Every event already stored is
-- linked, so the chain verifies as before.

-- id: the order of append, which linking follows. Adding it numbers the
-- events already stored (all linked, so their ids order nothing).
ALTER TABLE audit_events
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
    DROP CONSTRAINT audit_events_pkey,
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id),
    ALTER COLUMN seq DROP NOT NULL,
    ADD CONSTRAINT audit_events_seq_key UNIQUE (seq),
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL,
    ADD CONSTRAINT audit_events_link_check CHECK (
        (seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (hash IS NULL));
-- What the next link pass takes, in order.
CREATE INDEX audit_events_unlinked ON audit_events (id) WHERE seq IS NULL;

-- System mode links (the link pass reads every user's unlinked events and
-- sets their place); the service's role may set only the three columns of
-- a row's place, and the trigger lets it set them only on an unlinked row,
-- only after the head, and never change anything else.
CREATE POLICY audit_events_system_link ON audit_events FOR UPDATE
    USING (current_setting('envvault.system', true) = 'on')
    WITH CHECK (current_setting('envvault.system', true) = 'on');
GRANT UPDATE (seq, prev_hash, hash) ON audit_events TO envvault_app;

-- An insert is unlinked: the head moves only when a row is linked.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_follow_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL THEN
        RAISE EXCEPTION 'audit_events: a new row is inserted unlinked; the link pass places it after the head'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- An update may only link an unlinked row after the head, changing
-- nothing else; a delete may only take rows before the anchor (prune).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq < (SELECT first_seq FROM audit_head) THEN
        RETURN OLD; -- pruned: prune moved the anchor past it first
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
        AND (NEW.id, NEW.time, NEW.user_id, NEW.token_id, NEW.request_id, NEW.client_addr, NEW.action,
             NEW.target_type, NEW.target_id, NEW.details)
            IS NOT DISTINCT FROM
            (OLD.id, OLD.time, OLD.user_id, OLD.token_id, OLD.request_id, OLD.client_addr, OLD.action,
             OLD.target_type, OLD.target_id, OLD.details) THEN
        UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash
            WHERE seq = NEW.seq - 1 AND hash = NEW.prev_hash;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit_events: row % does not follow the head of the chain', NEW.seq
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW; -- linked
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused (only an unlinked row may be linked, after the head; only rows before the anchor may be deleted, by envvault audit prune)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
-- +goose StatementEnd
