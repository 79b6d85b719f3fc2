-- +goose Up
-- A link pass links a batch of events in one UPDATE (postgres/audit_link.go)
-- and the chain is checked once per statement, not once per row: 00006's
-- row trigger ran PL/pgSQL and moved audit_head once for every event, three
-- statements' work per write. What it refused is still refused, by two
-- triggers:
--
-- * audit_events_link_row, BEFORE UPDATE FOR EACH ROW, fires only for an
--   update that is not a link (its WHEN is evaluated without calling any
--   function): a linked row changed, a row left or made half-linked, or
--   any other column changed. It raises.
-- * audit_events_link, AFTER UPDATE FOR EACH STATEMENT, reads the rows the
--   statement linked (its transition table) and checks that they follow
--   the head: their seqs are the next ones after audit_head's, with no gap
--   (seq is unique), and each row's prev_hash is the hash of the row
--   before it, the first one's the head's. Then it moves the head to the
--   last, once.
--
-- Deletes (prune) and TRUNCATE are refused by audit_events_append_only as
-- before, which now fires for DELETE only.

DROP TRIGGER audit_events_append_only ON audit_events;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq < (SELECT first_seq FROM audit_head) THEN
        RETURN OLD; -- pruned: prune moved the anchor past it first
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused (only an unlinked row may be linked, after the head; only rows before the anchor may be deleted, by envvault audit prune)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_append_only BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_link_row BEFORE UPDATE ON audit_events
    FOR EACH ROW
    WHEN (NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
        AND (NEW.id, NEW.time, NEW.user_id, NEW.token_id, NEW.request_id, NEW.client_addr, NEW.action,
             NEW.target_type, NEW.target_id, NEW.details)
            IS NOT DISTINCT FROM
            (OLD.id, OLD.time, OLD.user_id, OLD.token_id, OLD.request_id, OLD.client_addr, OLD.action,
             OLD.target_type, OLD.target_id, OLD.details)))
    EXECUTE FUNCTION audit_events_append_only();

-- +goose StatementBegin
CREATE FUNCTION audit_events_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    n bigint;
    lo bigint;
    hi bigint;
    chained boolean;
BEGIN
    SELECT count(*), min(seq), max(seq) INTO n, lo, hi FROM linked;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    SELECT seq, hash INTO head_seq, head_hash FROM audit_head;
    SELECT bool_and(prev_hash = coalesce(before, head_hash)) INTO chained
        FROM (SELECT prev_hash, lag(hash) OVER (ORDER BY seq) AS before FROM linked) l;
    IF lo <> head_seq + 1 OR hi <> head_seq + n OR NOT chained THEN
        RAISE EXCEPTION 'audit_events: rows % to % do not follow the head of the chain (%)', lo, hi, head_seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE audit_head SET seq = hi, hash = (SELECT hash FROM linked WHERE seq = hi)
        WHERE seq = head_seq AND hash = head_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_events: the head of the chain moved while rows % to % were linked', lo, hi
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_link AFTER UPDATE ON audit_events
    REFERENCING NEW TABLE AS linked
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_link();
