package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/vault"
)

// The audit trail (vault/audit_chain.go) is the table audit_events and its
// head, the one row of audit_head; see migrations/postgres/00004_audit.sql
// and 00006_audit_link.sql. Under row-level security, a user's transaction
// appends and reads that user's events; system mode (systemTx) appends the
// events of no user (a failed sign-in, a prune), reads every event
// (verify), and links (audit_link.go). Only the tables' owner may delete
// events (prune): the service's role may not.
//
// An append inserts its event unlinked, in one statement that takes no
// lock another write waits for; the transaction's write is then linked by
// the link pass that runs after its commit (linkAfter).

// appendAudit inserts ev, unlinked: its Seq, PrevHash and Hash are set by
// the link pass after the commit. The details are stored in their
// canonical form, which the pass hashes as verify will.
func appendAudit(ctx context.Context, q querier, ev *vault.AuditEvent) error {
	sql, args, err := auditInsert(ev)
	if err != nil {
		return err
	}
	if _, err = q.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("insert audit event %s: %w", ev.Action, convert(err))
	}
	return nil
}

// auditInsert is the statement that appends ev, unlinked.
func auditInsert(ev *vault.AuditEvent) (string, []any, error) {
	details, err := ev.DetailsJSON()
	if err != nil {
		return "", nil, fmt.Errorf("audit event %s: %w", ev.Action, err)
	}
	var user *string
	if ev.UserID != "" {
		user = &ev.UserID
	}
	return `INSERT INTO audit_events (time, user_id, token_id, request_id, client_addr, action,
			target_type, target_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		[]any{ev.Time, user, ev.TokenID, ev.RequestID, ev.ClientAddr, ev.Action,
			ev.TargetType, ev.TargetID, string(details)}, nil
}

// appendAudits appends events in order.
func appendAudits(ctx context.Context, q querier, events []*vault.AuditEvent) error {
	for _, ev := range events {
		if err := appendAudit(ctx, q, ev); err != nil {
			return err
		}
	}
	return nil
}

const auditCols = `seq, time, user_id, token_id, request_id, client_addr, action, target_type, target_id,
	details::text, prev_hash, hash`

func collectAuditEvents(rows pgx.Rows) ([]*vault.AuditEvent, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vault.AuditEvent, error) {
		var e vault.AuditEvent
		var user *string
		var details string
		if err := row.Scan(&e.Seq, &e.Time, &user, &e.TokenID, &e.RequestID, &e.ClientAddr, &e.Action,
			&e.TargetType, &e.TargetID, &details, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = e.Time.UTC()
		if user != nil {
			e.UserID = *user
		}
		sqlstore.DecodeAuditRow(&e, details)
		return &e, nil
	})
}

// AppendAudit appends ev to the audit trail in the transaction, unlinked;
// Update links it after the commit.
func (t *tx) AppendAudit(ctx context.Context, ev *vault.AuditEvent) error {
	if err := t.checkOwner("audit event", ev.Action, ev.UserID); err != nil {
		return err
	}
	sql, args, err := auditInsert(ev)
	if err != nil {
		return err
	}
	return t.later(ctx, sql, args, func(_ pgconn.CommandTag, err error) error {
		if err != nil {
			return fmt.Errorf("insert audit event %s: %w", ev.Action, convert(err))
		}
		return nil
	})
}

// AuditEvents returns up to f.Limit of the user's events matching f,
// newest first.
func (t *tx) AuditEvents(ctx context.Context, f vault.AuditFilter) ([]*vault.AuditEvent, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	if err := t.db.linkFirst(ctx); err != nil {
		return nil, err
	}
	w := sqlstore.AuditWhere(sqlstore.Dollar, timeArg, t.userID, f)
	// An event not yet linked has no seq: it is listed once it is.
	rows, err := t.tx.Query(ctx, `SELECT `+auditCols+` FROM audit_events WHERE seq IS NOT NULL AND `+w.String()+
		` ORDER BY seq DESC LIMIT `+strconv.Itoa(f.Limit), w.Args...)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", convert(err))
	}
	list, err := collectAuditEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", convert(err))
	}
	return list, nil
}

// AppendAuditEvent appends ev, an event of no user, to the audit trail in
// a transaction of its own, in system mode, and links it.
func (db *DB) AppendAuditEvent(ctx context.Context, ev *vault.AuditEvent) error {
	if ev.UserID != "" {
		return fmt.Errorf("append audit event %s: an event of user %s belongs in that user's transaction", ev.Action, ev.UserID)
	}
	err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error { return appendAudit(ctx, tx, ev) })
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	db.linkAfter()
	return nil
}

func readAuditHead(ctx context.Context, q querier, lock bool) (vault.AuditHead, error) {
	var h vault.AuditHead
	query := `SELECT seq, hash, first_seq, anchor_hash FROM audit_head`
	if lock {
		query += ` FOR UPDATE`
	}
	if err := q.QueryRow(ctx, query).Scan(&h.Seq, &h.Hash, &h.FirstSeq, &h.AnchorHash); err != nil {
		return h, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// AuditHead returns the state of the audit chain.
func (db *DB) AuditHead(ctx context.Context) (vault.AuditHead, error) {
	var h vault.AuditHead
	if err := db.linkFirst(ctx); err != nil {
		return h, err
	}
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) (err error) {
		h, err = readAuditHead(ctx, tx, false)
		return err
	})
	return h, err
}

// AuditChain returns up to limit events of every user after afterSeq, in
// order; it reads in system mode.
func (db *DB) AuditChain(ctx context.Context, afterSeq int64, limit int) ([]*vault.AuditEvent, error) {
	var list []*vault.AuditEvent
	if err := db.linkFirst(ctx); err != nil {
		return nil, err
	}
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+auditCols+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`,
			afterSeq, limit)
		if err != nil {
			return err
		}
		list, err = collectAuditEvents(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit events after seq %d: %w", afterSeq, err)
	}
	return list, nil
}

// pruneBatch is how many events PruneAudit deletes per transaction, so
// that link passes wait for the chain's lock at most that long.
var pruneBatch int64 = 5000

// PruneAudit deletes the events before the first (by seq) whose time is at
// or after before, a batch per transaction; each batch first moves the
// chain's anchor to the oldest event it keeps (the delete trigger refuses
// any other), so the chain verifies after every batch. It runs in system
// mode, and needs the tables' owner: the service's role may not delete
// events.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int64, vault.AuditHead, error) {
	if err := db.linkFirst(ctx); err != nil {
		return 0, vault.AuditHead{}, err
	}
	var total int64
	for {
		var n int64
		var done bool
		var head vault.AuditHead
		err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error {
			var err error
			if head, err = readAuditHead(ctx, tx, true); err != nil {
				return err
			}
			limit := min(head.FirstSeq+pruneBatch, head.Seq+1)
			// The first event kept: the first at or after before, else the
			// end of the batch.
			var keep *int64
			err = tx.QueryRow(ctx, `SELECT min(seq) FROM audit_events WHERE seq >= $1 AND seq < $2 AND time >= $3`,
				head.FirstSeq, limit, before).Scan(&keep)
			if err != nil {
				return fmt.Errorf("find the first audit event to keep: %w", err)
			}
			cut := limit
			if keep != nil {
				cut, done = *keep, true
			}
			if cut <= head.FirstSeq {
				done = true
				return nil
			}
			anchor := head.Hash
			if cut <= head.Seq {
				err := tx.QueryRow(ctx, `SELECT prev_hash FROM audit_events WHERE seq = $1`, cut).Scan(&anchor)
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("audit event %d, the first to keep, is missing: run envvault audit verify", cut)
				} else if err != nil {
					return fmt.Errorf("read the anchor of audit event %d: %w", cut, err)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE audit_head SET first_seq = $1, anchor_hash = $2`, cut, anchor); err != nil {
				return fmt.Errorf("move the audit anchor: %w", err)
			}
			tag, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE seq < $1`, cut)
			if err != nil {
				return fmt.Errorf("delete audit events: %w", err)
			}
			n = tag.RowsAffected()
			head.FirstSeq, head.AnchorHash = cut, anchor
			done = done || cut > head.Seq
			return nil
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == insufficientPrivilege {
			return total, vault.AuditHead{}, fmt.Errorf("prune audit events: the role of this connection may not delete them: prune as the tables' owner (DATABASE_MIGRATE_URL): %w", err)
		} else if err != nil {
			return total, vault.AuditHead{}, fmt.Errorf("prune audit events: %w", err)
		}
		total += n
		if done {
			return total, head, nil
		}
	}
}
