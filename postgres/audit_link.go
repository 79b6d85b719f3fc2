package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/vault"
)

// Linking (vault/audit_chain.go, migrations/postgres/00006_audit_link.sql
// and 00021_audit_link_statement.sql): a write inserts its event unlinked,
// in its own transaction, taking no lock another write waits for. After
// the commit a link pass takes the chain's lock (audit_head's row) for a
// short transaction in system mode, reads the unlinked events in order of
// id, chains each after the head and sets their seq, prev_hash and hash in
// one statement; the table's triggers check that the statement links only
// unlinked rows, changing nothing else, that they follow the head in
// order, and move the head. A pass links every unlinked event it sees,
// whoever wrote it, so concurrent writes share one pass and one commit; a
// pass of another process that links ours leaves ours nothing to do.
//
// No event is skipped: a pass reads, under the chain's lock, every row
// with no seq that has committed, and links them all (a batch at a time
// until none is left). A row is linked only if the triggers find it
// follows the head, and only once (they refuse to change a linked row). A
// write starts a pass that begins after its commit and does not wait for
// it; every read of the trail waits for one (linkFirst), so it sees every
// returned write linked. If the process stops in between, the next pass
// of any process, or audit verify, links the event.

// linkBatch is how many events a link pass links per transaction, so that
// prune and the next pass wait for the chain's lock at most that long.
var linkBatch = 1000

// linkTimeout bounds one link pass, all its batches: a pass that cannot
// finish (the chain's lock held for longer) leaves its events to the next.
var linkTimeout = 30 * time.Second

// linker runs this process's link passes one at a time. A caller that
// arrives while a pass runs waits for the next one, which begins after the
// running one ends and so after the caller's commit; every caller that
// arrives meanwhile shares that next pass.
type linker struct {
	mu      sync.Mutex
	wg      sync.WaitGroup // the running loop
	running bool
	next    *linkPass // the pass that begins when the running one ends
}

type linkPass struct {
	done chan struct{}
	n    int64
	err  error
}

// do returns the result of a pass of run that began after do was called,
// or ctx's error if ctx ends first (the pass goes on).
func (l *linker) do(ctx context.Context, run func(context.Context) (int64, error)) (int64, error) {
	p := l.start(run)
	select {
	case <-p.done:
		return p.n, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// start makes sure a pass of run begins after this call, sharing one with
// every caller that arrives while the running pass runs, and returns it
// without waiting. The pass runs in the background, bounded by
// linkTimeout, whatever becomes of the caller.
func (l *linker) start(run func(context.Context) (int64, error)) *linkPass {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next == nil {
		l.next = &linkPass{done: make(chan struct{})}
	}
	p := l.next
	if !l.running {
		l.running = true
		l.next = nil
		l.wg.Add(1)
		go l.loop(p, run)
	}
	return p
}

// wait returns when no pass runs.
func (l *linker) wait() { l.wg.Wait() }

// loop runs p and then the passes callers queue meanwhile, until none is
// queued.
func (l *linker) loop(p *linkPass, run func(context.Context) (int64, error)) {
	defer l.wg.Done()
	for p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), linkTimeout)
		p.n, p.err = run(ctx)
		cancel()
		close(p.done)
		l.mu.Lock()
		p, l.next = l.next, nil
		l.running = p != nil
		l.mu.Unlock()
	}
}

// linkAfter starts a link pass after a write without waiting for it: the
// write is committed, and so is its event, whatever the pass meets; a pass
// that fails leaves it to the next pass (or audit verify).
func (db *DB) linkAfter() { db.linker.start(db.linkPass) }

// linkFirst links the events committed so far before a read of the trail,
// so that a reader sees every write that returned (their events are linked
// after the commit, without the write waiting). With no event left
// unlinked it costs one round trip.
func (db *DB) linkFirst(ctx context.Context) error {
	if db == nil {
		return nil
	}
	_, err := db.LinkAudit(ctx)
	return err
}

// LinkAudit links every event committed but not yet in the chain, in
// order of append, and returns how many this call's pass linked.
func (db *DB) LinkAudit(ctx context.Context) (int64, error) {
	n, err := db.linker.do(ctx, db.linkPass)
	if err != nil {
		return n, fmt.Errorf("link audit events: %w", err)
	}
	return n, nil
}

// linkPass links batch after batch until no event is left unlinked. It
// first asks, without a lock, whether any is: a pass with nothing to do
// then costs one round trip and no commit to disk.
func (db *DB) linkPass(ctx context.Context) (int64, error) {
	var pending bool
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT EXISTS (SELECT FROM audit_events WHERE seq IS NULL)`).QueryRow(func(r pgx.Row) error { return r.Scan(&pending) })
	})
	if err != nil || !pending {
		return 0, err
	}
	var total int64
	for {
		var n int
		err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) (err error) {
			n, err = linkBatchTx(ctx, tx)
			return err
		})
		total += int64(n)
		if err != nil || n < linkBatch {
			return total, err
		}
	}
}

// linkBatchTx links up to linkBatch unlinked events after the head, in one
// transaction that holds the chain's lock: the lock and the read in one
// round trip, the links in another.
func linkBatchTx(ctx context.Context, tx pgx.Tx) (int, error) {
	var seq int64
	var prev []byte
	var events []*vault.AuditEvent
	var ids []int64
	b := &pgx.Batch{}
	b.Queue(`SELECT seq, hash FROM audit_head FOR UPDATE`).QueryRow(func(r pgx.Row) error { return r.Scan(&seq, &prev) })
	b.Queue(`SELECT id, time, user_id, token_id, request_id, client_addr, action, target_type, target_id, details::text
		FROM audit_events WHERE seq IS NULL ORDER BY id LIMIT $1`, linkBatch).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id int64
			e, err := scanUnlinked(rows, &id)
			if err != nil {
				return err
			}
			events, ids = append(events, e), append(ids, id)
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("lock the audit head and read unlinked events: %w", err)
	}
	if len(events) == 0 {
		return 0, nil
	}
	seqs := make([]int64, len(events))
	prevs := make([][]byte, len(events))
	hashes := make([][]byte, len(events))
	for i, e := range events {
		if _, err := e.Chain(seq+1, prev); err != nil {
			return 0, fmt.Errorf("chain audit event %d: %w", ids[i], err)
		}
		seq, prev = e.Seq, e.Hash
		seqs[i], prevs[i], hashes[i] = e.Seq, e.PrevHash, e.Hash
	}
	// One statement links the batch; the table's statement trigger checks
	// that the rows follow the head and moves it (migration 00021).
	tag, err := tx.Exec(ctx, `UPDATE audit_events e SET seq = l.seq, prev_hash = l.prev_hash, hash = l.hash
		FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS l(id, seq, prev_hash, hash)
		WHERE e.id = l.id AND e.seq IS NULL`, ids, seqs, prevs, hashes)
	if err != nil {
		return 0, fmt.Errorf("link audit events up to seq %d: %w", seq, err)
	}
	if tag.RowsAffected() != int64(len(events)) {
		return 0, fmt.Errorf("linked %d of %d audit events up to seq %d: others were linked by another pass under the chain's lock", tag.RowsAffected(), len(events), seq)
	}
	return len(events), nil
}

// scanUnlinked reads an unlinked event and its id.
func scanUnlinked(rows pgx.Rows, id *int64) (*vault.AuditEvent, error) {
	var e vault.AuditEvent
	var user *string
	var details string
	if err := rows.Scan(id, &e.Time, &user, &e.TokenID, &e.RequestID, &e.ClientAddr, &e.Action,
		&e.TargetType, &e.TargetID, &details); err != nil {
		return nil, fmt.Errorf("read an unlinked audit event: %w", err)
	}
	e.Time = e.Time.UTC()
	if user != nil {
		e.UserID = *user
	}
	// Hashed as verify will hash it: the details as stored, decoded.
	sqlstore.DecodeAuditRow(&e, details)
	return &e, nil
}
