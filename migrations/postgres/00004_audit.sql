-- +goose Up
-- The audit trail (vault/audit.go): one hash chain of events, ordered by
-- seq, from 1 without gaps. Rows are append-only: the triggers below let an
-- insert only follow the chain's head (and move the head to it), refuse
-- every update and TRUNCATE, and let a delete take only rows before the
-- chain's anchor, which only prune moves forward. They guard against
-- mistakes, as does the service role's lack of UPDATE and DELETE (below);
-- `envvault audit verify` is what detects tampering, triggers dropped or
-- not.

CREATE TABLE audit_events (
    seq         bigint NOT NULL,
    time        timestamptz NOT NULL,
    -- NULL for an event of no user (a failed sign-in). Not a foreign key:
    -- the trail outlives what it tells of.
    user_id     text COLLATE "C",
    token_id    text COLLATE "C" NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT '',
    client_addr text NOT NULL DEFAULT '',
    action      text NOT NULL,
    target_type text NOT NULL DEFAULT '',
    target_id   text COLLATE "C" NOT NULL DEFAULT '',
    -- Names, ids, versions: never a value or a token. Hashed in canonical
    -- form, so jsonb's own key order and spacing do not matter.
    details     jsonb NOT NULL DEFAULT '{}',
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (seq),
    CONSTRAINT audit_events_seq_check CHECK (seq >= 1),
    CONSTRAINT audit_events_details_check CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT audit_events_hash_check CHECK (octet_length(hash) = 32)
);
-- GET /v1/audit: a user's events newest first, and by target.
CREATE INDEX audit_events_user_seq ON audit_events (user_id, seq);
CREATE INDEX audit_events_user_target_seq ON audit_events (user_id, target_id, seq);

-- The chain's state, one row: its last event (seq, hash), and its anchor,
-- the oldest event kept (first_seq; seq + 1 when none is) and the hash that
-- event follows (anchor_hash). Its row lock is the chain's lock.
CREATE TABLE audit_head (
    id          boolean NOT NULL DEFAULT true,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    first_seq   bigint NOT NULL,
    anchor_hash bytea NOT NULL,
    CONSTRAINT audit_head_pkey PRIMARY KEY (id),
    CONSTRAINT audit_head_one_row CHECK (id),
    CONSTRAINT audit_head_anchor_check CHECK (first_seq >= 1 AND first_seq <= seq + 1)
);
INSERT INTO audit_head (id, seq, hash, first_seq, anchor_hash) VALUES (true, 0, '', 1, '');

-- Row-level security (see 00005): a user's transaction reads and appends
-- that user's events only; system mode appends the events of no user (a
-- failed sign-in, a prune), reads every event (verify) and deletes (prune,
-- which the delete trigger confines to rows before the anchor). audit_head
-- holds no user's data and has no policy.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_own_read ON audit_events FOR SELECT
    USING (user_id = current_setting('envvault.user_id', true));
CREATE POLICY audit_events_own_append ON audit_events FOR INSERT
    WITH CHECK (user_id = current_setting('envvault.user_id', true));
CREATE POLICY audit_events_system_read ON audit_events FOR SELECT
    USING (current_setting('envvault.system', true) = 'on');
CREATE POLICY audit_events_system_append ON audit_events FOR INSERT
    WITH CHECK (current_setting('envvault.system', true) = 'on' AND user_id IS NULL);
CREATE POLICY audit_events_system_prune ON audit_events FOR DELETE
    USING (current_setting('envvault.system', true) = 'on');

-- The service's role (00005 creates it too, and grants it the rest) may
-- only read and append events, and move the head's seq and hash (which the
-- insert trigger does, as the inserting role; FOR UPDATE needs it too). It
-- may not update or delete an event, nor move the anchor: only the tables'
-- owner prunes (envvault audit prune with DATABASE_MIGRATE_URL).
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'envvault_app') THEN
        CREATE ROLE envvault_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of the cluster, migrating at once, made it
END
$$;
-- +goose StatementEnd
GRANT SELECT, INSERT ON audit_events TO envvault_app;
GRANT SELECT, UPDATE (seq, hash) ON audit_head TO envvault_app;

-- +goose StatementBegin
CREATE FUNCTION audit_events_follow_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash
        WHERE seq = NEW.seq - 1 AND hash = NEW.prev_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_events: row % does not follow the head of the chain', NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_follow_head BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_follow_head();

-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq < (SELECT first_seq FROM audit_head) THEN
        RETURN OLD; -- pruned: prune moved the anchor past it first
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused (only rows before the anchor may be deleted, by envvault audit prune)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- +goose StatementBegin
CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq AND NEW.first_seq >= OLD.first_seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_head only moves forward: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward();
