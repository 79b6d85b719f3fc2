package main

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// auditStore is where the audit commands run: their variables and store
// flags, the store as the service opens it, and raw SQL on the database as
// someone with every right (a tamperer).
type auditStore struct {
	migratedStore
	exec func(t *testing.T, query string)
	// unguard takes away the triggers that refuse changes to events.
	unguard []string
}

func sqliteAuditStore(t *testing.T) auditStore {
	ms := migratedSQLite(t)
	raw, err := sql.Open("sqlite", ms.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return auditStore{
		migratedStore: ms,
		exec: func(t *testing.T, q string) {
			t.Helper()
			if _, err := raw.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		unguard: []string{`DROP TRIGGER audit_events_no_update`},
	}
}

// postgresAuditStore is the README's set-up: the owner migrates and
// prunes (DATABASE_MIGRATE_URL), the service role serves and verifies.
func postgresAuditStore(t *testing.T) auditStore {
	ms := migratedPostgres(t)
	return auditStore{
		migratedStore: ms,
		exec: func(t *testing.T, q string) {
			t.Helper()
			conn, err := pgx.Connect(context.Background(), ms.roles.Super)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		unguard: []string{`ALTER TABLE audit_events DISABLE TRIGGER USER`}, // every guard, as an administrator can
	}
}

func TestAuditCommandsSQLite(t *testing.T) {
	t.Parallel()
	testAuditCommands(t, sqliteAuditStore(t))
}

func TestAuditCommandsPostgres(t *testing.T) {
	t.Parallel()
	testAuditCommands(t, postgresAuditStore(t))
}

func testAuditCommands(t *testing.T, st auditStore) {
	run := func(args ...string) *instance {
		t.Helper()
		return mustStart(t, st.env, append(args, st.args...)...)
	}
	fail := func(want string, args ...string) {
		t.Helper()
		mustFail(t, st.env, want, append(args, st.args...)...)
	}
	if out := run("audit", "verify").stdout.String(); out != "ok: 0 events, chain intact\nno event recorded yet\n" {
		t.Errorf("verify of an empty trail:\n%s", out)
	}
	// Three failed sign-ins eight years ago, then a user made today.
	old := time.Now().Add(-8 * 365 * 24 * time.Hour).UTC().Truncate(time.Microsecond)
	for i := range 3 {
		ev := &vault.AuditEvent{Time: old.Add(time.Duration(i) * time.Minute), Action: vault.ActionAuthFailed,
			TargetType: vault.TargetToken, TargetID: "tok_" + strings.Repeat("o", 21), Details: map[string]any{"reason": "unknown token"}}
		if err := st.store.AppendAuditEvent(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	token := createUser(t, st.env, "alice", st.args...)
	out := run("audit", "verify").stdout.String()
	if !regexp.MustCompile(`^ok: 5 events, chain intact\nfrom seq 1 to seq 5; head [0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("verify:\n%s", out)
	}

	if out := run("audit", "prune", "--older-than", "3000d").stdout.String(); !strings.HasPrefix(out, "nothing to prune: no audit event before ") {
		t.Errorf("prune of nothing:\n%s", out)
	}
	out = run("audit", "prune").stdout.String()
	if !strings.HasPrefix(out, "pruned 3 audit events from before ") || !strings.Contains(out, "the chain verifies from seq 4\nfrom seq 4 (earlier events pruned; anchor ") {
		t.Errorf("prune:\n%s", out)
	}
	if out := run("audit", "verify").stdout.String(); !strings.HasPrefix(out, "ok: 3 events, chain intact\nfrom seq 4 (earlier events pruned") {
		t.Errorf("verify after prune:\n%s", out)
	}
	events, err := st.store.AuditChain(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[2].Action != vault.ActionAuditPrune || events[2].UserID != "" ||
		events[2].Details["first_seq"] == nil || events[2].Details["deleted"] == nil {
		t.Fatalf("after prune: %+v", events)
	}
	for _, bad := range []string{"0d", "-5d", "soon", "0s", "1.5d"} {
		fail("flag -older-than", "audit", "prune", "--older-than", bad)
	}
	fail(`unknown command "audit bogus"`, "audit", "bogus")

	// Tampered with: verify names the row, prune keeps the evidence.
	for _, q := range st.unguard {
		st.exec(t, q)
	}
	st.exec(t, `UPDATE audit_events SET target_type = 'forged' WHERE seq = 5`)
	fail("audit chain broken at seq 5: content changed", "audit", "verify")
	fail("not pruning: the audit chain is broken at seq 5", "audit", "prune", "--older-than", "1h")
	if _, secret, _ := strings.Cut(token, "."); strings.Contains(out, secret) {
		t.Error("the output shows a token")
	}
}

func TestAuditHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"audit", "--help"}, {"audit", "verify", "--help"}, {"audit", "prune", "--help"}} {
		in, _ := start(t, nil, args...)
		if !strings.Contains(in.stdout.String(), "USAGE") {
			t.Errorf("envvault %v printed no usage:\n%s", args, in.stdout.String())
		}
	}
	in, _ := start(t, nil, "audit", "prune", "--help")
	for _, want := range []string{"-older-than", "2555d", "DATABASE_MIGRATE_URL"} {
		if !strings.Contains(in.stdout.String(), want) {
			t.Errorf("audit prune --help does not mention %s", want)
		}
	}
	if in, _ := start(t, nil, "--help"); !strings.Contains(in.stdout.String(), "audit") {
		t.Errorf("envvault --help does not list audit")
	}
}
