package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// seed makes a trail of a few events of two users.
func seedAudit(t *testing.T, f *fixture) []*vault.AuditEvent {
	t.Helper()
	alice := f.mustUser("alice")
	for i := range 3 {
		f.mustSecret(alice, fmt.Sprintf("S%d", i), value("v"))
	}
	return chain(t, f.store)
}

func testAuditGuarded(t *testing.T, f *fixture) {
	events := seedAudit(t, f)
	for _, q := range []string{
		`UPDATE audit_events SET target_id = 'forged' WHERE seq = 2`,
		`DELETE FROM audit_events WHERE seq = 2`,
		`DELETE FROM audit_events`,
		`UPDATE audit_head SET seq = 1`,
		`DELETE FROM audit_head`,
	} {
		if _, err := f.h.Exec(f.ctx, q); err == nil {
			t.Errorf("the database let %q through", q)
		}
	}
	last := events[len(events)-1]
	// An insert must follow the head.
	const forged = `INSERT INTO audit_events (seq, time, action, prev_hash, hash)
		VALUES (?, (SELECT time FROM audit_events WHERE seq = 1), 'secret.create', ?, ?)`
	if _, err := f.h.Exec(f.ctx, forged,
		last.Seq+2, last.Hash, bytes.Repeat([]byte{1}, 32)); err == nil {
		t.Errorf("the database took a row after a gap")
	}
	if _, err := f.h.Exec(f.ctx, forged,
		last.Seq+1, events[0].Hash, bytes.Repeat([]byte{1}, 32)); err == nil {
		t.Errorf("the database took a row that does not follow the head's hash")
	}
	mustVerify(t, f.store)
}

// auditTamperedTests each change the trail behind the store's back in one
// way and check that VerifyAudit reports it, at the seq given.
func auditTamperedTests() []test {
	var tests []test
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, h Harness, events []*vault.AuditEvent)
		seq    int64
		want   string
	}{
		{"changed target", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET target_id = 'sec_forged' WHERE seq = 3`)
		}, 3, "content changed"},
		{"changed details", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET details = '{"name":"OTHER","profile_ids":[],"scope":"all","version":1}' WHERE seq = 4`)
		}, 4, "content changed"},
		{"changed user", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET user_id = NULL WHERE seq = 5`)
		}, 5, "content changed"},
		{"rewritten with its hash recomputed", func(t *testing.T, h Harness, events []*vault.AuditEvent) {
			e := *events[2]
			e.TargetID = "sec_forged"
			sum, err := e.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, h, `UPDATE audit_events SET target_id = 'sec_forged', hash = ? WHERE seq = 3`, sum)
		}, 4, "prev_hash is not the hash of seq 3"},
		{"deleted in the middle", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq = 3`)
		}, 3, "missing"},
		{"two deleted in the middle", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq IN (3, 4)`)
		}, 3, "rows 3 to 4 are missing"},
		{"deleted first", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq = 1`)
		}, 1, "missing"},
		{"deleted last", func(t *testing.T, h Harness, events []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq = ?`, events[len(events)-1].Seq)
		}, 5, "last row appended"},
		// Only the head can tell: the last event has no successor whose
		// prev_hash would stop matching.
		{"last rewritten with its hash recomputed", func(t *testing.T, h Harness, events []*vault.AuditEvent) {
			e := *events[len(events)-1]
			e.TargetID = "sec_forged"
			sum, err := e.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, h, `UPDATE audit_events SET target_id = 'sec_forged', hash = ? WHERE seq = ?`, sum, e.Seq)
		}, 5, "the last row's hash is not the one the chain's head recorded"},
		{"tail truncated", func(t *testing.T, h Harness, events []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq >= ?`, events[len(events)-2].Seq)
		}, 4, "rows 4 to 5 are missing"},
		{"reordered", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET seq = 1000003 WHERE seq = 3`)
			mustExec(t, h, `UPDATE audit_events SET seq = 3 WHERE seq = 4`)
			mustExec(t, h, `UPDATE audit_events SET seq = 4 WHERE seq = 1000003`)
		}, 3, "out of order: the row follows seq 4"},
	} {
		tests = append(tests, test{name: tc.name, fn: func(t *testing.T, f *fixture) {
			events := seedAudit(t, f)
			if len(events) != 5 {
				t.Fatalf("seeded %d events, want 5", len(events))
			}
			mustVerify(t, f.store)
			for _, q := range f.h.Unguard {
				mustExec(t, f.h, q)
			}
			tc.tamper(t, f.h, events)
			wantBreak(t, f.store, tc.seq, tc.want)
		}})
	}
	return tests
}

func mustExec(t *testing.T, h Harness, query string, args ...any) {
	t.Helper()
	if _, err := h.Exec(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func testAuditFailedAppendRollsBack(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "agent")
	sec := f.mustSecret(alice, "KEPT", value("older"))
	sec = f.mustUpdateSecret(alice, sec.ID, vault.SecretPatch{Value: ptr(value("old"))})
	before := chain(t, f.store)

	for _, q := range f.h.FailAppends {
		mustExec(t, f.h, q)
	}
	ctx := f.ctx
	for name, write := range auditedWrites(f, alice, p, sec) {
		err := write()
		if err == nil {
			t.Errorf("%s succeeded without its audit event", name)
			continue
		}
		noCanary(t, err)
		if code := vault.ErrorCode(err); code != vault.EINTERNAL {
			t.Errorf("%s: code %s, want %s: %v", name, code, vault.EINTERNAL, err)
		}
	}
	// A failed sign-in is counted and written when its window ends: a
	// write that fails is an error of the flush, and the count is kept
	// for the next one (written below, once appends work again).
	_, _, err := f.svc.Authenticate(ctx, "tok_"+strings.Repeat("f", 21)+".x")
	if code := vault.ErrorCode(err); code != vault.EUNAUTHORIZED {
		t.Errorf("failed sign-in: code %s, want %s", code, vault.EUNAUTHORIZED)
	}
	if err := f.svc.FlushAuthFailures(ctx); vault.ErrorCode(err) != vault.EINTERNAL {
		t.Errorf("flush while appends fail: %v, want %s", err, vault.EINTERNAL)
	}

	// Nothing changed.
	if all := f.mustAllSecrets(alice); len(all) != 1 {
		t.Errorf("alice has %d secrets, want 1", len(all))
	}
	got := f.mustGetSecret(alice, sec.ID)
	sameSecret(t, got, sec)
	f.wantEnv(alice, p.ID, map[string]string{"KEPT": value("old")})
	sameProfile(t, f.mustGetProfile(alice, p.ID), p)
	if page, err := f.svc.Profiles(ctx, alice, vault.ListOptions{}); err != nil || len(page.Items) != 1 {
		t.Errorf("profiles: %d, %v", len(page.Items), err)
	}

	for _, q := range f.h.RestoreAppends {
		mustExec(t, f.h, q)
	}
	if after := chain(t, f.store); len(after) != len(before) {
		t.Errorf("%d events, want %d", len(after), len(before))
	}
	f.mustUpdateSecret(alice, sec.ID, vault.SecretPatch{Value: ptr(value("new"))})
	if err := f.svc.FlushAuthFailures(ctx); err != nil {
		t.Fatalf("flush once appends work: %v", err)
	}
	after := chain(t, f.store)
	if last := after[len(after)-1]; last.Action != vault.ActionAuthFailed || fmt.Sprint(last.Details["failed"]) != "1" {
		t.Errorf("the kept failed sign-in: %+v", last)
	}
	if got := mustVerify(t, f.store); got != int64(len(before)+2) {
		t.Errorf("verified %d events, want %d", got, len(before)+2)
	}
}

// auditedWrites are a write of each kind the Service audits, by alice on
// her profile p and secret sec.
func auditedWrites(f *fixture, alice string, p *vault.Profile, sec *vault.Secret) map[string]func() error {
	ctx := f.ctx
	return map[string]func() error{
		"create secret": func() error {
			_, err := f.svc.CreateSecret(ctx, alice, vault.SecretInput{Name: "NEW", Value: value("new")})
			return err
		},
		"update secret": func() error {
			_, err := f.svc.UpdateSecret(ctx, alice, sec.ID, vault.SecretPatch{Value: ptr(value("new")), Name: ptr("RENAMED")})
			return err
		},
		"delete secret": func() error { return f.svc.DeleteSecret(ctx, alice, sec.ID) },
		"create profile": func() error {
			_, err := f.svc.CreateProfile(ctx, alice, vault.ProfileInput{Name: "p2", Image: "x"})
			return err
		},
		"update profile": func() error {
			_, err := f.svc.UpdateProfile(ctx, alice, p.ID, vault.ProfilePatch{Image: ptr("changed")})
			return err
		},
		"delete profile": func() error { return f.svc.DeleteProfile(ctx, alice, p.ID) },
		"create token":   func() error { _, err := f.svc.CreateToken(ctx, alice); return err },
		"create user":    func() error { _, _, err := f.svc.CreateUser(ctx, "bob"); return err },
		"release": func() error {
			_, err := f.svc.ReleaseForTask(ctx, alice, vault.TaskRelease{TaskID: "tsk_1", ProfileID: p.ID})
			return err
		},
		"roll back": func() error { _, err := f.svc.RollbackSecret(ctx, alice, sec.ID, 1); return err },
		"import": func() error {
			_, err := f.svc.ImportSecrets(ctx, alice, []vault.ImportEntry{{Line: 1, Name: "KEPT", Value: value("imported")}}, vault.ScopeAll, nil)
			return err
		},
	}
}
