package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/vault"
)

// The audit trail (vault/audit.go) is the table audit_events and its head,
// the one row of audit_head; see migrations/sqlite/00004_audit.sql. Every
// append runs on the write connection, inside a BEGIN IMMEDIATE
// transaction: SQLite's one writer is the chain's lock.

// auditQuerier is a transaction or a connection pool.
type auditQuerier interface {
	execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// appendAudit appends ev after the chain's head in two statements: the
// head's read, and the insert, whose triggers check that it follows the
// head and move the head to it.
func appendAudit(ctx context.Context, q auditQuerier, ev *vault.AuditEvent) error {
	var seq int64
	var prev []byte
	if err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head`).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	details, err := ev.Chain(seq+1, prev)
	if err != nil {
		return fmt.Errorf("audit event %s: %w", ev.Action, err)
	}
	_, err = q.ExecContext(ctx, `
		INSERT INTO audit_events (seq, time, user_id, token_id, request_id, client_addr, action,
			target_type, target_id, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Seq, micros(ev.Time), nullString(ev.UserID), ev.TokenID, ev.RequestID, ev.ClientAddr, ev.Action,
		ev.TargetType, ev.TargetID, string(details), ev.PrevHash, ev.Hash)
	if err != nil {
		return fmt.Errorf("insert audit event %d (%s): %w", ev.Seq, ev.Action, err)
	}
	return nil
}

const auditColumns = `seq, time, user_id, token_id, request_id, client_addr, action, target_type, target_id,
	details, prev_hash, hash`

func scanAuditEvent(rows *sql.Rows) (*vault.AuditEvent, error) {
	var e vault.AuditEvent
	var t int64
	var user sql.NullString
	var details string
	if err := rows.Scan(&e.Seq, &t, &user, &e.TokenID, &e.RequestID, &e.ClientAddr, &e.Action,
		&e.TargetType, &e.TargetID, &details, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Time, e.UserID = fromMicros(t), user.String
	sqlstore.DecodeAuditRow(&e, details)
	return &e, nil
}

// AppendAudit appends ev to the audit trail in the transaction: the
// transaction holds the database's write lock already.
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
	w := sqlstore.AuditWhere(sqlstore.Question, timeArg, t.userID, f)
	rows, err := t.tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE `+w.String()+
		` ORDER BY seq DESC LIMIT `+strconv.Itoa(f.Limit), w.Args...)
	list, err := collect(rows, err, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	return list, nil
}

// AppendAuditEvent appends ev to the audit trail in a transaction of its
// own.
func (db *DB) AppendAuditEvent(ctx context.Context, ev *vault.AuditEvent) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error { return appendAudit(ctx, stx, ev) })
}

// LinkAudit returns 0: every append takes its place in the chain in its
// own transaction, under the database's one write lock.
func (db *DB) LinkAudit(context.Context) (int64, error) { return 0, nil }

func readAuditHead(ctx context.Context, q auditQuerier) (vault.AuditHead, error) {
	var h vault.AuditHead
	err := q.QueryRowContext(ctx, `SELECT seq, hash, first_seq, anchor_hash FROM audit_head`).
		Scan(&h.Seq, &h.Hash, &h.FirstSeq, &h.AnchorHash)
	if err != nil {
		return h, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// AuditHead returns the state of the audit chain.
func (db *DB) AuditHead(ctx context.Context) (vault.AuditHead, error) {
	return readAuditHead(ctx, db.read)
}

// AuditChain returns up to limit events after afterSeq, in order.
func (db *DB) AuditChain(ctx context.Context, afterSeq int64, limit int) ([]*vault.AuditEvent, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`,
		afterSeq, limit)
	list, err := collect(rows, err, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	return list, nil
}

// pruneBatch is how many events PruneAudit deletes per transaction, so
// that writers wait for the lock at most that long.
var pruneBatch int64 = 5000

// PruneAudit deletes the events before the first (by seq) whose time is at
// or after before, a batch per transaction; each batch first moves the
// chain's anchor to the oldest event it keeps (the delete trigger refuses
// any other), so the chain verifies after every batch.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int64, vault.AuditHead, error) {
	var total int64
	for {
		var n int64
		var done bool
		var head vault.AuditHead
		err := db.writeTx(ctx, func(stx *sql.Tx) error {
			var err error
			head, err = readAuditHead(ctx, stx)
			if err != nil {
				return err
			}
			limit := min(head.FirstSeq+pruneBatch, head.Seq+1)
			// The first event kept: the first at or after before, else the
			// end of the batch.
			var keep sql.NullInt64
			err = stx.QueryRowContext(ctx, `SELECT min(seq) FROM audit_events WHERE seq >= ? AND seq < ? AND time >= ?`,
				head.FirstSeq, limit, micros(before)).Scan(&keep)
			if err != nil {
				return fmt.Errorf("find the first audit event to keep: %w", err)
			}
			cut := limit
			if keep.Valid {
				cut, done = keep.Int64, true
			}
			if cut <= head.FirstSeq {
				done = true
				return nil
			}
			anchor := head.Hash
			if cut <= head.Seq {
				err := stx.QueryRowContext(ctx, `SELECT prev_hash FROM audit_events WHERE seq = ?`, cut).Scan(&anchor)
				if isNoRows(err) {
					return fmt.Errorf("audit event %d, the first to keep, is missing: run envvault audit verify", cut)
				} else if err != nil {
					return fmt.Errorf("read the anchor of audit event %d: %w", cut, err)
				}
			}
			if _, err := stx.ExecContext(ctx, `UPDATE audit_head SET first_seq = ?, anchor_hash = ?`, cut, anchor); err != nil {
				return fmt.Errorf("move the audit anchor: %w", err)
			}
			res, err := stx.ExecContext(ctx, `DELETE FROM audit_events WHERE seq < ?`, cut)
			if err != nil {
				return fmt.Errorf("delete audit events: %w", err)
			}
			if n, err = res.RowsAffected(); err != nil {
				return fmt.Errorf("rows affected: %w", err)
			}
			head.FirstSeq, head.AnchorHash = cut, anchor
			done = done || cut > head.Seq
			return nil
		})
		if err != nil {
			return total, vault.AuditHead{}, fmt.Errorf("prune audit events: %w", err)
		}
		total += n
		if done {
			return total, head, nil
		}
	}
}
