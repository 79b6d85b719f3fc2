package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

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
	// Appended as the store appends: unlinked (audit_link.go).
	_, err = tx.Exec(ctx, `INSERT INTO audit_events (time, user_id, action) VALUES ($1, $2, $3)`,
		time.Now().UTC().Truncate(time.Microsecond), bob, vault.ActionSecretDelete)
	wantPolicyViolation(t, "an event of bob's appended in alice's transaction", err)

	rep, err := vault.VerifyAudit(ctx, d.service)
	if err != nil || rep.Break != nil || rep.Events != 6 {
		t.Fatalf("verify as the service role: %+v, %v", rep, err)
	}
}
