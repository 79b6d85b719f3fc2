package postgres_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

func TestAudit(t *testing.T) {
	storetest.RunAudit(t, newStore)
}

// TestAuditTamper changes the trail with raw SQL on a connection of its
// own, as the database's owner could.
func TestAuditTamper(t *testing.T) {
	storetest.RunAuditTamper(t, func(t *testing.T) storetest.RawAudit {
		db, url := openDB(t)
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return storetest.RawAudit{
			Store: db,
			Exec: func(query string, args ...any) error {
				_, err := conn.Exec(context.Background(), dollars(query), args...)
				return err
			},
			Unguard: []string{`ALTER TABLE audit_events DISABLE TRIGGER USER`},
			FailAppends: []string{
				`CREATE FUNCTION test_audit_down() RETURNS trigger LANGUAGE plpgsql AS
					$$ BEGIN RAISE EXCEPTION 'the audit trail is down'; END $$`,
				`CREATE TRIGGER test_audit_down BEFORE INSERT ON audit_events
					FOR EACH ROW EXECUTE FUNCTION test_audit_down()`,
			},
			RestoreAppends: []string{`DROP TRIGGER test_audit_down ON audit_events`, `DROP FUNCTION test_audit_down()`},
		}
	})
}

// dollars turns the ? placeholders of the suite's SQL into $1, $2, ...
func dollars(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestPruneAuditInBatches prunes across several batches: each moves the
// anchor on, and the chain verifies after.
func TestPruneAuditInBatches(t *testing.T) {
	defer postgres.SetPruneBatch(3)()
	db, _ := openDB(t)
	storetest.RunAuditPruneInBatches(t, db)
}

// ownerPrunes is the service role's store whose PruneAudit is the owner's,
// as `envvault audit prune` with DATABASE_MIGRATE_URL is.
type ownerPrunes struct {
	*postgres.DB
	owner *postgres.DB
}

func (s ownerPrunes) PruneAudit(ctx context.Context, before time.Time) (int64, vault.AuditHead, error) {
	return s.owner.PruneAudit(ctx, before)
}

// TestRLSAudit runs the audit suite with the store connected as the
// service role, under row-level security, pruning as the owner.
func TestRLSAudit(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) vault.Store {
		d := newRLSDB(t)
		owner, err := postgres.Open(context.Background(), d.Owner)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { owner.Close() })
		return ownerPrunes{DB: d.service, owner: owner}
	})
}

// TestRLSAuditServiceRole checks what the service role may not do to the
// trail, whatever the triggers: update or delete an event, move the anchor,
// prune; and that it reads only its user's events.
func TestRLSAuditServiceRole(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	svc := newService(t, d.service, vault.Options{})
	alice, bob := mustUser(t, svc), mustUser(t, svc)
	mustSecret(t, svc, alice, vault.SecretInput{Name: "A", Value: "alice's value"})
	mustSecret(t, svc, bob, vault.SecretInput{Name: "B", Value: "bob's value"})

	if _, _, err := d.service.PruneAudit(ctx, time.Now().Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "DATABASE_MIGRATE_URL") {
		t.Errorf("the service role pruning the audit trail: %v, want an error that says to prune as the owner", err)
	}
	conn, err := pgx.Connect(ctx, d.Service)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`UPDATE audit_events SET target_id = 'x'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
		`UPDATE audit_head SET first_seq = 2`,
		`DELETE FROM audit_head`,
	} {
		for _, setting := range []string{"envvault.system", "envvault.user_id"} {
			value := "on"
			if setting == "envvault.user_id" {
				value = alice
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, setting, value); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, q); err == nil {
				t.Errorf("the service role, %s=%s, could %s", setting, value, q)
			}
			_ = tx.Rollback(ctx)
		}
	}
	// Alice's transaction sees her events only, and cannot append bob's.
	err = d.service.View(ctx, alice, func(tx vault.Tx) error {
		list, err := tx.AuditEvents(ctx, vault.AuditFilter{Limit: 100})
		if err != nil {
			return err
		}
		for _, e := range list {
			if e.UserID != alice {
				t.Errorf("alice's transaction read event %d of %q", e.Seq, e.UserID)
			}
		}
		if len(list) != 3 {
			t.Errorf("alice's transaction read %d events, want 3", len(list))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT set_config('envvault.user_id', $1, true)`, alice); err != nil {
		t.Fatal(err)
	}
	var head vault.AuditHead
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head FOR UPDATE`).Scan(&head.Seq, &head.Hash); err != nil {
		t.Fatal(err)
	}
	ev := &vault.AuditEvent{Time: time.Now().UTC().Truncate(time.Microsecond), Actor: vault.Actor{UserID: bob}, Action: vault.ActionSecretDelete}
	if _, err := ev.Chain(head.Seq+1, head.Hash); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_events (seq, time, user_id, action, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6)`,
		ev.Seq, ev.Time, ev.UserID, ev.Action, ev.PrevHash, ev.Hash)
	wantPolicyViolation(t, "an event of bob's appended in alice's transaction", err)

	rep, err := vault.VerifyAudit(ctx, d.service)
	if err != nil || rep.Break != nil || rep.Events != 6 {
		t.Fatalf("verify as the service role: %+v, %v", rep, err)
	}
}
