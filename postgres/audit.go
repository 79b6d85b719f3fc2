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

// The audit trail (vault/audit.go) is the table audit_events and its head,
// the one row of audit_head; see migrations/postgres/00004_audit.sql.
// Under row-level security, a user's transaction appends and reads that
// user's events; system mode (systemTx) appends the events of no user (a
// failed sign-in, a prune) and reads every event, for verify. Only the
// tables' owner may delete events (prune): the service's role may not.
//
// An append takes the head's row lock (SELECT ... FOR UPDATE), which
// orders every append of every process: a waiting transaction reads the
// head its predecessor committed. The lock is held until the transaction
// ends, so the Service appends last, just before it commits. Lock order is
// always the user's row (Update), then the head, so appends never
// deadlock.

// appendAudit appends ev after the chain's head in two statements: the
// head's read under its row lock, and the insert, whose trigger checks
// that it follows the head and moves the head to it.
func appendAudit(ctx context.Context, q querier, ev *vault.AuditEvent) error {
	var seq int64
	var prev []byte
	if err := q.QueryRow(ctx, `SELECT seq, hash FROM audit_head FOR UPDATE`).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("lock audit head: %w", err)
	}
	details, err := ev.Chain(seq+1, prev)
	if err != nil {
		return fmt.Errorf("audit event %s: %w", ev.Action, err)
	}
	var user *string
	if ev.UserID != "" {
		user = &ev.UserID
	}
	_, err = q.Exec(ctx, `
		INSERT INTO audit_events (seq, time, user_id, token_id, request_id, client_addr, action,
			target_type, target_id, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		ev.Seq, ev.Time, user, ev.TokenID, ev.RequestID, ev.ClientAddr, ev.Action,
		ev.TargetType, ev.TargetID, string(details), ev.PrevHash, ev.Hash)
	if err != nil {
		return fmt.Errorf("insert audit event %d (%s): %w", ev.Seq, ev.Action, convert(err))
	}
	return nil
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

// AppendAudit appends ev to the audit trail in the transaction, and holds
// the chain's lock until it ends.
func (t *tx) AppendAudit(ctx context.Context, ev *vault.AuditEvent) error {
	if err := t.checkOwner("audit event", ev.Action, ev.UserID); err != nil {
		return err
	}
	return appendAudit(ctx, t.tx, ev)
}

// AuditEvents returns up to f.Limit of the user's events matching f,
// newest first.
func (t *tx) AuditEvents(ctx context.Context, f vault.AuditFilter) ([]*vault.AuditEvent, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	w := sqlstore.AuditWhere(sqlstore.Dollar, timeArg, t.userID, f)
	rows, err := t.tx.Query(ctx, `SELECT `+auditCols+` FROM audit_events WHERE `+w.String()+
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
// a transaction of its own, in system mode.
func (db *DB) AppendAuditEvent(ctx context.Context, ev *vault.AuditEvent) error {
	if ev.UserID != "" {
		return fmt.Errorf("append audit event %s: an event of user %s belongs in that user's transaction", ev.Action, ev.UserID)
	}
	err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error { return appendAudit(ctx, tx, ev) })
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
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
// that writers wait for the chain's lock at most that long.
var pruneBatch int64 = 5000

// PruneAudit deletes the events before the first (by seq) whose time is at
// or after before, a batch per transaction; each batch first moves the
// chain's anchor to the oldest event it keeps (the delete trigger refuses
// any other), so the chain verifies after every batch. It runs in system
// mode, and needs the tables' owner: the service's role may not delete
// events.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int64, vault.AuditHead, error) {
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
