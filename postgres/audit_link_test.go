package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// heldWrite is a write of a user held open, uncommitted, after it has
// taken its locks and appended its event, until release is closed.
type heldWrite struct {
	release chan struct{}
	done    chan error
	once    sync.Once
	err     error // of the write, once ended
}

// holdWrite opens a write of userID that takes lock (or none), appends
// an event and then waits; it returns once the write holds all that.
func holdWrite(t *testing.T, store *postgres.DB, userID string, lock func(vault.Tx) error) *heldWrite {
	t.Helper()
	ctx := t.Context()
	h := &heldWrite{release: make(chan struct{}), done: make(chan error, 1)}
	held := make(chan struct{})
	go func() {
		h.done <- store.Update(ctx, userID, func(tx vault.Tx) error {
			if err := lock(tx); err != nil {
				return err
			}
			ev := &vault.AuditEvent{Time: time.Now().UTC().Truncate(time.Microsecond), Actor: vault.Actor{UserID: userID},
				Action: vault.ActionProfileUpdate, TargetType: vault.TargetProfile, TargetID: "held"}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			// Update's pipeline sends the lock and the event with the next
			// statement whose answer is read: this one.
			if _, err := tx.CountSecrets(ctx); err != nil {
				return err
			}
			close(held)
			<-h.release
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-h.done:
		t.Fatalf("the held write ended before it held its locks: %v", err)
	}
	t.Cleanup(func() { _ = h.end() })
	return h
}

// end releases the write and waits for its commit, once; it returns the
// write's error.
func (h *heldWrite) end() error {
	h.once.Do(func() {
		close(h.release)
		h.err = <-h.done
	})
	return h.err
}

// stillOpen fails unless the held write has not ended.
func (h *heldWrite) stillOpen(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-h.done:
		t.Fatalf("%s: the held write ended first (%v), so nothing shows that it did not wait for it", what, err)
	default:
	}
}

// TestWritesDoNotWait holds a write open, uncommitted, with its event
// appended, and shows that the writes that share no rule with it commit,
// with their events linked, before it ends: another user's writes (a
// create too), and the same user's writes to other secrets. A create of
// the same user, which the quota makes take turns, waits for a held create
// and for nothing else. As the service role, under row-level security.
func TestWritesDoNotWait(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{})
	alice, bob := mustUser(t, svc), mustUser(t, svc)
	a1 := mustSecret(t, svc, alice, vault.SecretInput{Name: "A1", Value: "a1"})
	a2 := mustSecret(t, svc, alice, vault.SecretInput{Name: "A2", Value: "a2"})
	b1 := mustSecret(t, svc, bob, vault.SecretInput{Name: "B1", Value: "b1"})

	// Alice's write of a1, held open.
	held := holdWrite(t, d.service, alice, func(tx vault.Tx) error { return tx.Lock(ctx, a1.ID) })
	// A write that waited for the held one would wait for ever: the
	// deadline turns that into a failure, and asserts no speed.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, w := range []struct {
		what  string
		write func() error
	}{
		{"bob's update", func() error {
			_, err := svc.UpdateSecret(ctx, bob, b1.ID, vault.SecretPatch{Value: ptrTo("b1 again")})
			return err
		}},
		{"bob's create", func() error {
			_, err := svc.CreateSecret(ctx, bob, vault.SecretInput{Name: "B2", Value: "b2"})
			return err
		}},
		{"alice's update and rename of another secret", func() error {
			_, err := svc.UpdateSecret(ctx, alice, a2.ID, vault.SecretPatch{Value: ptrTo("a2 again"), Name: ptrTo("A2_RENAMED")})
			return err
		}},
		{"alice's create", func() error {
			_, err := svc.CreateSecret(ctx, alice, vault.SecretInput{Name: "A3", Value: "a3"})
			return err
		}},
		{"alice's delete of another secret", func() error { return svc.DeleteSecret(ctx, alice, a2.ID) }},
	} {
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.what, err)
		}
		held.stillOpen(t, w.what)
		// A write returns before its event is linked; a reader waits for
		// the pass it started. The held write's event is not committed,
		// so no pass sees it.
		waitLinked(t, d.service)
		if n := unlinked(t, d.Super); n != 0 {
			t.Fatalf("after %s returned: %d committed events unlinked, want 0", w.what, n)
		}
	}
	if err := held.end(); err != nil {
		t.Fatal(err)
	}
	// Two events per user (user, token), three creates, five writes, the
	// held one.
	wantLinkedAndVerified(t, d.service, d.Super, 4+3+5+1)
}

// TestCreatesTakeTurns holds a create of alice's open under her user lock
// and shows that her second create waits for it (the quota counts her
// secrets) while her updates and bob's create do not.
func TestCreatesTakeTurns(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{MaxSecrets: 2})
	alice, bob := mustUser(t, svc), mustUser(t, svc)
	a1 := mustSecret(t, svc, alice, vault.SecretInput{Name: "A1", Value: "a1"})

	held := holdWrite(t, d.service, alice, func(tx vault.Tx) error { return tx.LockUser(ctx) })
	if _, err := svc.UpdateSecret(ctx, alice, a1.ID, vault.SecretPatch{Value: ptrTo("a1 again")}); err != nil {
		t.Fatal(err)
	}
	mustSecret(t, svc, bob, vault.SecretInput{Name: "B1", Value: "b1"})
	held.stillOpen(t, "alice's update and bob's create")

	created := make(chan error, 1)
	go func() {
		_, err := svc.CreateSecret(ctx, alice, vault.SecretInput{Name: "A2", Value: "a2"})
		created <- err
	}()
	awaitLockWaiters(t, d.Super, 1)
	select {
	case err := <-created:
		t.Fatalf("alice's second create ended while her first held the user lock: %v", err)
	default:
	}
	if err := held.end(); err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil {
		t.Fatalf("alice's second create, after the first ended: %v", err)
	}
	// Two events per user, a1, its update, bob's create, the held write,
	// alice's second create.
	wantLinkedAndVerified(t, d.service, d.Super, 4+1+1+1+1+1)
}

// awaitLockWaiters waits until n sessions of the database wait for a
// lock (a row lock or an advisory lock), polling pg_stat_activity.
func awaitLockWaiters(t *testing.T, superURL string, n int) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("no session waits for a lock: %v", t.Context().Err())
		}
	}
}

// unlinked counts the committed events not yet in the chain.
func unlinked(t *testing.T, superURL string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE seq IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantLinkedAndVerified fails unless no committed event is left unlinked
// and the chain verifies with want events.
func wantLinkedAndVerified(t *testing.T, store vault.AuditStore, superURL string, want int64) {
	t.Helper()
	waitLinked(t, store)
	if n := unlinked(t, superURL); n != 0 {
		t.Fatalf("%d events left unlinked after every write returned", n)
	}
	rep, err := vault.VerifyAudit(t.Context(), store)
	if err != nil || rep.Break != nil || rep.Events != want || rep.Linked != 0 {
		t.Fatalf("verify: %+v, %v; want %d events intact, none linked by verify", rep, err, want)
	}
}

// waitLinked waits, as every read of the trail does, for a link pass that
// begins after every write that returned.
func waitLinked(t *testing.T, store vault.AuditStore) {
	t.Helper()
	if _, err := store.LinkAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestLinkNoneSkipped writes from two stores at once (two processes, each
// with its own link passes), many users and one user's several secrets,
// and checks that when every write has returned, every event is linked,
// once, in a chain without gaps that verifies.
func TestLinkNoneSkipped(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	other, err := postgres.Open(ctx, d.Service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	keys := testvault.MustKeyring(t)
	var svcs []*vault.Service
	for _, st := range []*postgres.DB{d.service, other} {
		svc := vault.NewService(st, keys, vault.Options{})
		if err := svc.CheckKeys(ctx); err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, svc)
	}
	const users, perUser = 6, 10
	var ids []string
	for u := range users {
		ids = append(ids, mustUser(t, svcs[u%2]))
	}
	var wg sync.WaitGroup
	errs := make([]error, users*perUser)
	for w := range errs {
		wg.Go(func() {
			_, errs[w] = svcs[w%2].CreateSecret(ctx, ids[w/perUser], vault.SecretInput{Name: fmt.Sprintf("S%d", w%perUser), Value: "v"})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	wantLinkedAndVerified(t, d.service, d.Super, users*2+users*perUser)
}

// TestLinkOrphans leaves events committed but unlinked, as a process that
// stops between a write's commit and its link pass leaves them, more than
// a batch of them, and checks that the next read of the trail (a user's
// list) links them all first, in order of append, and lists them. Verify
// links the ones left before it walks, and says how many.
func TestLinkOrphans(t *testing.T) {
	defer postgres.SetLinkBatch(3)()
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{})
	alice, bob := mustUser(t, svc), mustUser(t, svc)
	orphans := func(n int) {
		t.Helper()
		for i := range n {
			superExec(t, d.Super, fmt.Sprintf(`INSERT INTO audit_events (time, user_id, action, target_type, target_id, details)
				VALUES (now(), '%s', 'secret.delete', 'secret', 'orphan-%d', '{"name":"X"}')`, alice, i))
		}
	}
	waitLinked(t, d.service)
	orphans(7)
	err := d.service.View(ctx, alice, func(tx vault.Tx) error {
		list, err := tx.AuditEvents(ctx, vault.AuditFilter{Limit: 100})
		if len(list) != 2+7 {
			t.Errorf("alice's list holds %d events, want her 2 and the 7 orphans, linked by the read", len(list))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := unlinked(t, d.Super); n != 0 {
		t.Fatalf("%d orphans left after a read of the trail", n)
	}
	mustSecret(t, svc, bob, vault.SecretInput{Name: "B", Value: "b"})
	waitLinked(t, d.service)
	var targets []string
	for _, e := range chainOf(t, d.service) {
		if strings.HasPrefix(e.TargetID, "orphan-") || e.UserID == bob && e.Action == vault.ActionSecretCreate {
			targets = append(targets, e.TargetID)
		}
	}
	if got := strings.Join(targets, " "); !strings.HasPrefix(got, "orphan-0 orphan-1 orphan-2 orphan-3 orphan-4 orphan-5 orphan-6 sec_") {
		t.Errorf("linked in the order %s, want the orphans in order of append, then bob's create", got)
	}
	orphans(4)
	rep, err := vault.VerifyAudit(ctx, d.service)
	if err != nil || rep.Break != nil || rep.Linked != 4 || rep.Events != 4+7+1+4 {
		t.Fatalf("verify: %+v, %v; want 4 linked first, 16 intact", rep, err)
	}
}

// chainOf reads the whole chain in order.
func chainOf(t *testing.T, st vault.AuditStore) []*vault.AuditEvent {
	t.Helper()
	list, err := st.AuditChain(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestLinkGuarded checks what the link trigger refuses, as the tables'
// owner would try it (the service role may set only seq, prev_hash and
// hash, in system mode): re-linking a linked row, linking a row out of
// turn, and changing a row's content while linking it.
func TestLinkGuarded(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{})
	alice := mustUser(t, svc)
	waitLinked(t, d.service)
	superExec(t, d.Super, fmt.Sprintf(`INSERT INTO audit_events (time, user_id, action) VALUES (now(), '%s', 'secret.delete')`, alice))
	conn, err := pgx.Connect(ctx, d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var head vault.AuditHead
	if err := conn.QueryRow(ctx, `SELECT seq, hash FROM audit_head`).Scan(&head.Seq, &head.Hash); err != nil {
		t.Fatal(err)
	}
	forged := make([]byte, 32)
	next := head.Seq + 1
	for _, c := range []struct {
		what, q string
		args    []any
	}{
		{"re-link a linked row", `UPDATE audit_events SET seq = seq + 100 WHERE seq = 1`, nil},
		{"unlink a linked row", `UPDATE audit_events SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 1`, nil},
		{"link out of turn", `UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3 WHERE seq IS NULL`, []any{next + 1, head.Hash, forged}},
		{"link after another hash", `UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $2 WHERE seq IS NULL`, []any{next, forged}},
		{"change content, linking", `UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3, target_id = 'x' WHERE seq IS NULL`, []any{next, head.Hash, forged}},
		{"half-link an unlinked row", `UPDATE audit_events SET hash = $1 WHERE seq IS NULL`, []any{forged}},
		{"insert a row linked", `INSERT INTO audit_events (time, action, seq, prev_hash, hash) VALUES (now(), 'secret.delete', $1, $2, $3)`, []any{next, head.Hash, forged}},
		{"move the head backwards", `UPDATE audit_head SET seq = seq - 1`, nil},
	} {
		_, err := conn.Exec(ctx, c.q, c.args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23000" {
			t.Errorf("%s: %v, want the trigger's integrity_constraint_violation", c.what, err)
		}
	}
	if _, err := d.service.LinkAudit(ctx); err != nil {
		t.Fatal(err)
	}
	wantLinkedAndVerified(t, d.service, d.Super, 3)
}

// TestLinkPassGivesUp holds the chain's lock past a link pass's timeout:
// the write still succeeds (its event is committed with it), its event
// waits unlinked, and the next pass links it.
func TestLinkPassGivesUp(t *testing.T) {
	defer postgres.SetLinkTimeout(time.Second)()
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{})
	alice := mustUser(t, svc)
	waitLinked(t, d.service)
	lock := holdChainLock(t, d.Super)
	mustSecret(t, svc, alice, vault.SecretInput{Name: "A", Value: "a"})
	if n := unlinked(t, d.Super); n != 1 {
		t.Fatalf("%d events unlinked while the chain's lock was held, want the write's", n)
	}
	if _, err := d.service.LinkAudit(ctx); err == nil {
		t.Fatalf("a link pass ended without the chain's lock")
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := d.service.LinkAudit(ctx); err != nil || n != 1 {
		t.Fatalf("the next pass linked %d, %v; want 1", n, err)
	}
	wantLinkedAndVerified(t, d.service, d.Super, 3)
}

func ptrTo[T any](v T) *T { return &v }

// holdChainLock takes the chain's lock (audit_head's row, FOR UPDATE) in
// a transaction of its own, as a link pass does, until the caller rolls
// it back (or the test ends).
func holdChainLock(t *testing.T, superURL string) pgx.Tx {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), superURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	lock, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(t.Context(), `SELECT FROM audit_head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	return lock
}

// TestWriteReturnsBeforeItsLink holds the chain's lock (audit_head's row),
// as a long link pass of another process would: a write returns all the
// same, its event committed and not yet linked (the unlinked window); once
// the lock is free, the pass the write started links it with no further
// call, and verify then finds it in the chain, linked by no one else.
func TestWriteReturnsBeforeItsLink(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{})
	alice := mustUser(t, svc)
	waitLinked(t, d.service)
	lock := holdChainLock(t, d.Super)
	// A write that waited for the lock would wait for ever: the deadline
	// turns that into a failure, and asserts no speed.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := svc.CreateSecret(wctx, alice, vault.SecretInput{Name: "A", Value: "a"}); err != nil {
		t.Fatalf("a write while the chain's lock is held: %v", err)
	}
	if n := unlinked(t, d.Super); n != 1 {
		t.Fatalf("%d events unlinked after the write returned, want its one", n)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for unlinked(t, d.Super) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the write's own link pass never linked its event")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep, err := vault.VerifyAudit(ctx, d.service)
	if err != nil || rep.Break != nil || rep.Linked != 0 || rep.Events != 3 {
		t.Fatalf("verify: %+v, %v; want 3 events intact, none linked by verify", rep, err)
	}
}
