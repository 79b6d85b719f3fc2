package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// rlsDB is a fresh database set up as the README says to run envvault on
// PostgreSQL: migrated by an owner role, and the store connected as a
// service role, a member of envvault_app. Neither is a superuser:
// superusers pass through row-level security.
type rlsDB struct {
	testenv.PostgresRoles
	service *postgres.DB
}

func newRLSDB(t testing.TB) *rlsDB {
	t.Helper()
	ctx := context.Background()
	d := &rlsDB{PostgresRoles: testenv.RequirePostgresRoles(t)}
	owner, err := postgres.Open(ctx, d.Owner)
	if err != nil {
		t.Fatalf("open as the owner: %v", err)
	}
	defer owner.Close()
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatalf("migrate as the owner: %v", err)
	}
	d.service, err = postgres.Open(ctx, d.Service)
	if err != nil {
		t.Fatalf("open as the service: %v", err)
	}
	t.Cleanup(func() { d.service.Close() })
	return d
}

// superExec runs statements as the test cluster's superuser.
func superExec(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("as superuser: %s: %v", s, err)
		}
	}
}

// TestRLSConformance runs the whole store suite with the store connected
// as the service role, under row-level security: every store method sets
// whose transaction it is, and does its job.
func TestRLSConformance(t *testing.T) {
	storetest.Run(t, newRLSHarness)
}

// ownerOf says, for each table under row-level security, whose a row is:
// an SQL expression over the table's columns giving a user id. A table of
// user data added by a later migration must be added here (the coverage
// check in TestRLSEveryTable fails until it is).
var ownerOf = map[string]string{
	"users":              "id",
	"tokens":             "user_id",
	"profiles":           "user_id",
	"secrets":            "user_id",
	"secret_grants":      "user_id",
	"secret_versions":    "user_id",
	"tasks":              "user_id",
	"task_logs":          "(SELECT t.user_id FROM tasks t WHERE t.id = task_logs.task_id)",
	"audit_events":       "user_id",
	"sessions":           "user_id",
	"secret_requests":    "user_id",
	"oauth2_connections": "user_id",
	"oauth2_flows":       "user_id",
}

// noPolicy are the tables that hold no user's data and have no policy.
var noPolicy = []string{"audit_head", "goose_db_version", "key_checks"}

// systemReads are the tables whose rows system mode sees (of every user);
// it sees no row of the others.
var systemReads = []string{"tokens", "secrets", "secret_versions", "tasks", "task_logs", "audit_events", "users", "secret_requests", "oauth2_connections"}

// twoUsers is a user's data in every table, twice over.
type twoUsers struct {
	a, b               string // user ids
	aSecret, bSecret   *vault.Secret
	aProfile, bProfile *vault.Profile
	bAgentsSecret      *vault.Secret
	bTask, bSecretName string
}

// seedTwoUsers gives users A and B a row in every table under row-level
// security, through the service on the store as the service role (and,
// for secret versions, straight in the database, so the test does not
// depend on how history is kept).
func seedTwoUsers(t *testing.T, d *rlsDB) twoUsers {
	t.Helper()
	ctx := context.Background()
	svc := newService(t, d.service, vault.Options{})
	var u twoUsers
	u.a, u.b = mustUser(t, svc), mustUser(t, svc)
	u.aProfile = mustProfile(t, svc, u.a, "agent")
	u.bProfile = mustProfile(t, svc, u.b, "agent")
	u.aSecret = mustSecret(t, svc, u.a, vault.SecretInput{Name: "A_ONLY", Value: "value-of-a"})
	u.bSecret = mustSecret(t, svc, u.b, vault.SecretInput{Name: "B_ONLY", Value: "value-of-b"})
	mustSecret(t, svc, u.a, vault.SecretInput{Name: "A_AGENTS", Value: "a2", Scope: vault.ScopeAgents, ProfileIDs: []string{u.aProfile.ID}})
	u.bAgentsSecret = mustSecret(t, svc, u.b, vault.SecretInput{Name: "B_AGENTS", Value: "b2", Scope: vault.ScopeAgents, ProfileIDs: []string{u.bProfile.ID}})
	u.bSecretName = u.bSecret.Name
	for _, user := range []string{u.a, u.b} {
		mustSecret(t, svc, user, vault.SecretInput{Name: "API_TOKEN", Kind: vault.KindOAuth2, Value: "client-secret",
			OAuth2: &vault.OAuth2Settings{Flow: vault.FlowClientCredentials, TokenURL: "https://idp.example/token", ClientID: "c"}})
	}
	for _, user := range []struct{ id, profile string }{{u.a, u.aProfile.ID}, {u.b, u.bProfile.ID}} {
		now := time.Now().UTC().Truncate(time.Microsecond)
		task := &orchestrator.Task{ID: vault.NewID(vault.PrefixTask), UserID: user.id, ProfileID: user.profile,
			Prompt: "p", Status: orchestrator.StatusQueued, Attempt: 1, CreatedAt: now, UpdatedAt: now}
		if err := d.service.CreateTask(ctx, task); err != nil {
			t.Fatalf("create task: %v", err)
		}
		if err := d.service.AppendTaskLog(ctx, task.ID, []byte("log of "+user.id)); err != nil {
			t.Fatalf("append log: %v", err)
		}
		if user.id == u.b {
			u.bTask = task.ID
		}
		if _, err := svc.OpenSecretRequest(ctx, user.id, user.profile, task.ID, []vault.RequiredSecret{{Name: "WANTED"}}, time.Hour); err != nil {
			t.Fatalf("open secret request: %v", err)
		}
	}
	superExec(t, d.Super, `INSERT INTO secret_versions
			(secret_id, user_id, version, name, sealed_value, sealed_key, master_key_id, replaced_at)
		SELECT id, user_id, 1, name, sealed_value, sealed_key, master_key_id, now() FROM secrets
		ON CONFLICT DO NOTHING`)
	superExec(t, d.Super, `INSERT INTO sessions (id, user_id, token_id, created_at, last_seen_at, expires_at)
		SELECT 'seed-' || id, user_id, id, now(), now(), now() + interval '1 hour' FROM tokens`)
	superExec(t, d.Super, `INSERT INTO oauth2_flows (id, user_id, secret_id, kind, user_code, verification_uri, status, created_at, expires_at, updated_at)
		SELECT 'oaf_' || id, user_id, id, 'device_code', 'ABCD-EFGH', 'https://idp.example/device', 'pending', now(), now() + interval '10 minutes', now()
		FROM secrets WHERE kind = 'oauth2'`)
	return u
}

// rlsTables returns the tables of the schema, split by whether row-level
// security is enabled and forced on them.
func rlsTables(t *testing.T, superURL string) (forced, not []string) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		ORDER BY c.relname`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var on bool
		if err := rows.Scan(&name, &on); err != nil {
			t.Fatal(err)
		}
		if on {
			forced = append(forced, name)
		} else {
			not = append(not, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return forced, not
}

// count returns what count(*) over table where cond gives on conn.
func count(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table, cond string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRow(t.Context(), `SELECT count(*) FROM `+table+` WHERE `+cond, args...).Scan(&n); err != nil {
		t.Fatalf("count %s where %s: %v", table, cond, err)
	}
	return n
}

// TestRLSEveryTable connects as the service role, with raw SQL that has no
// WHERE user_id, and checks every table under row-level security: with
// user A's setting it returns A's rows and nothing of B's; with no setting
// it returns nothing; in system mode it returns only the tables the
// cross-user methods read. It also checks that every table of the schema
// is either under forced row-level security or one of the few that hold
// no user's data.
func TestRLSEveryTable(t *testing.T) {
	d := newRLSDB(t)
	u := seedTwoUsers(t, d)
	ctx := t.Context()

	forced, not := rlsTables(t, d.Super)
	if !slices.Equal(not, noPolicy) {
		t.Errorf("tables without forced row-level security: %v, want only %v: a table of user data needs ENABLE and FORCE ROW LEVEL SECURITY and a policy", not, noPolicy)
	}
	for _, table := range forced {
		if _, ok := ownerOf[table]; !ok {
			t.Errorf("table %s is under row-level security but not in ownerOf: add it, so this test checks it", table)
		}
	}

	super, err := pgx.Connect(ctx, d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(ctx)
	service, err := pgx.Connect(ctx, d.Service)
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close(ctx)

	// in runs fn in a transaction of the raw service connection with a
	// setting (or none), and rolls it back.
	in := func(setting, value string, fn func(tx pgx.Tx)) {
		t.Helper()
		tx, err := service.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if setting != "" {
			if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, setting, value); err != nil {
				t.Fatal(err)
			}
		}
		fn(tx)
	}

	for _, table := range forced {
		owner := ownerOf[table]
		if owner == "" {
			continue
		}
		ofA := count(t, super, table, owner+" = $1", u.a)
		ofB := count(t, super, table, owner+" = $1", u.b)
		all := count(t, super, table, "true")
		if ofA == 0 || ofB == 0 {
			t.Errorf("%s: the seed gave A %d rows and B %d: want both some, or the check below proves nothing", table, ofA, ofB)
		}
		in("envvault.user_id", u.a, func(tx pgx.Tx) {
			if n := count(t, tx, table, "true"); n != ofA {
				t.Errorf("%s as A, no WHERE: %d rows, want A's %d (of %d in all)", table, n, ofA, all)
			}
			if n := count(t, tx, table, owner+" = $1", u.b); n != 0 {
				t.Errorf("%s as A, WHERE user is B: %d rows, want none", table, n)
			}
		})
		in("", "", func(tx pgx.Tx) {
			if n := count(t, tx, table, "true"); n != 0 {
				t.Errorf("%s with no setting: %d rows, want none", table, n)
			}
		})
		in("envvault.system", "on", func(tx pgx.Tx) {
			want := 0
			if slices.Contains(systemReads, table) {
				want = all
			}
			if n := count(t, tx, table, "true"); n != want {
				t.Errorf("%s in system mode: %d rows, want %d", table, n, want)
			}
		})
		// Another value of the system setting is no system mode.
		in("envvault.system", "yes", func(tx pgx.Tx) {
			if n := count(t, tx, table, "true"); n != 0 {
				t.Errorf("%s with envvault.system=yes: %d rows, want none", table, n)
			}
		})
	}

	// Writes as A aimed at B's rows touch nothing, or are refused.
	in("envvault.user_id", u.a, func(tx pgx.Tx) {
		for _, s := range []struct{ sql, what string }{
			{`UPDATE secrets SET description = 'x' WHERE id = $1`, u.bSecret.ID},
			{`DELETE FROM secrets WHERE id = $1`, u.bSecret.ID},
			{`UPDATE profiles SET image = 'evil' WHERE id = $1`, u.bProfile.ID},
			{`DELETE FROM profiles WHERE id = $1`, u.bProfile.ID},
			{`DELETE FROM secret_grants WHERE secret_id = $1`, u.bAgentsSecret.ID},
			{`UPDATE tasks SET prompt = 'x' WHERE id = $1`, u.bTask},
			{`DELETE FROM task_logs WHERE task_id = $1`, u.bTask},
			{`DELETE FROM tokens WHERE user_id = $1`, u.b},
			{`DELETE FROM users WHERE id = $1`, u.b},
			{`UPDATE secret_requests SET status = 'cancelled' WHERE user_id = $1`, u.b},
		} {
			tag, err := tx.Exec(ctx, s.sql, s.what)
			if err != nil {
				t.Fatalf("%s: %v", s.sql, err)
			}
			if tag.RowsAffected() != 0 {
				t.Errorf("as A: %s on B's row affected %d rows, want 0", s.sql, tag.RowsAffected())
			}
		}
	})
	in("envvault.user_id", u.a, func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, `INSERT INTO profiles (id, user_id, name, image, command, setup_commands, env, created_at, updated_at)
			VALUES ('prof_x', $1, 'x', 'x', '[]', '[]', '{}', now(), now())`, u.b)
		wantPolicyViolation(t, "insert of B's profile as A", err)
	})
	in("envvault.user_id", u.a, func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, `UPDATE secrets SET user_id = $1 WHERE id = $2`, u.b, u.aSecret.ID)
		wantPolicyViolation(t, "giving A's secret to B as A", err)
	})
	// System mode cannot delete or insert what it only reads or re-wraps.
	in("envvault.system", "on", func(tx pgx.Tx) {
		for _, sql := range []string{`DELETE FROM secrets`, `DELETE FROM tokens`, `DELETE FROM tasks`, `DELETE FROM secret_versions`,
			`UPDATE profiles SET image = 'evil'`, `UPDATE tokens SET hash = '\x00'`} {
			tag, err := tx.Exec(ctx, sql)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			if tag.RowsAffected() != 0 {
				t.Errorf("system mode: %s affected %d rows, want 0", sql, tag.RowsAffected())
			}
		}
	})

	// The setting is the transaction's: after commit, the same connection
	// sees nothing again.
	tx, err := service.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('envvault.user_id', $1, true)`, u.a); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, service, "secrets", "true"); n != 0 {
		t.Errorf("after a transaction of A committed, its connection sees %d secrets, want none", n)
	}
}

func wantPolicyViolation(t *testing.T, what string, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("%s: err = %v, want a row-level security violation (42501)", what, err)
	}
}

// TestRLSWithoutGoFilter runs every Tx method in a transaction of user A
// whose Go-level filter names user B, as if the store's WHERE user_id were
// wrong: row-level security alone answers, and it answers as for an id
// that does not exist. Then a raw statement with no WHERE user_id at all,
// in a transaction opened as the store opens A's, finds nothing of B's.
func TestRLSWithoutGoFilter(t *testing.T) {
	d := newRLSDB(t)
	u := seedTwoUsers(t, d)
	ctx := t.Context()
	before := dump(t, d.Super)

	err := d.service.UpdateMisfiltered(ctx, u.a, u.b, func(tx vault.Tx) error {
		if _, err := tx.Secret(ctx, u.bSecret.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("Secret(B's) = %v, want ENOTFOUND", err)
		}
		if list, err := tx.Secrets(ctx, vault.ListFilter{Limit: 100}); err != nil || len(list) != 0 {
			t.Errorf("Secrets = %d, %v; want none", len(list), err)
		}
		if list, err := tx.SecretsNamed(ctx, u.bSecretName); err != nil || len(list) != 0 {
			t.Errorf("SecretsNamed(B's name) = %d, %v; want none", len(list), err)
		}
		if n, err := tx.CountSecrets(ctx); err != nil || n != 0 {
			t.Errorf("CountSecrets = %d, %v; want 0", n, err)
		}
		if _, err := tx.Profile(ctx, u.bProfile.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("Profile(B's) = %v, want ENOTFOUND", err)
		}
		if list, err := tx.Profiles(ctx, vault.ListFilter{Limit: 100}); err != nil || len(list) != 0 {
			t.Errorf("Profiles = %d, %v; want none", len(list), err)
		}
		if ids, err := tx.ExistingProfileIDs(ctx, []string{u.bProfile.ID}); err != nil || len(ids) != 0 {
			t.Errorf("ExistingProfileIDs(B's) = %v, %v; want none", ids, err)
		}
		changed := *u.bSecret
		changed.Description = "changed by A"
		if err := tx.UpdateSecret(ctx, &changed, true); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("UpdateSecret(B's) = %v, want ENOTFOUND", err)
		}
		p := *u.bProfile
		p.Image = "evil:latest"
		if err := tx.UpdateProfile(ctx, &p); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("UpdateProfile(B's) = %v, want ENOTFOUND", err)
		}
		if err := tx.DeleteSecret(ctx, u.bSecret.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("DeleteSecret(B's) = %v, want ENOTFOUND", err)
		}
		if err := tx.DeleteProfile(ctx, u.bProfile.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("DeleteProfile(B's) = %v, want ENOTFOUND", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("misfiltered transaction: %v", err)
	}
	// Inserting a row of B's fails (and aborts the transaction, so each
	// gets its own).
	err = d.service.UpdateMisfiltered(ctx, u.a, u.b, func(tx vault.Tx) error {
		now := time.Now().UTC().Truncate(time.Microsecond)
		return tx.CreateProfile(ctx, &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: u.b, Name: "planted",
			Image: "evil", Command: []string{}, SetupCommands: []string{}, Env: map[string]string{}, CreatedAt: now, UpdatedAt: now})
	})
	if err == nil {
		t.Error("CreateProfile of B's as A succeeded")
	}
	err = d.service.UpdateMisfiltered(ctx, u.a, u.b, func(tx vault.Tx) error {
		s := *u.bSecret
		s.ID, s.Name = vault.NewID(vault.PrefixSecret), "PLANTED"
		return tx.CreateSecret(ctx, &s)
	})
	if err == nil {
		t.Error("CreateSecret of B's as A succeeded")
	}

	// The brief's own example: SELECT … FROM secrets WHERE id = $1, with
	// no user filter, in A's transaction.
	err = d.service.UserTx(ctx, u.a, func(tx pgx.Tx) error {
		for _, q := range []struct{ sql, id string }{
			{`SELECT id FROM secrets WHERE id = $1`, u.bSecret.ID},
			{`SELECT id FROM profiles WHERE id = $1`, u.bProfile.ID},
			{`SELECT secret_id FROM secret_grants WHERE secret_id = $1`, u.bAgentsSecret.ID},
			{`SELECT secret_id FROM secret_versions WHERE secret_id = $1`, u.bSecret.ID},
			{`SELECT id FROM tasks WHERE id = $1`, u.bTask},
			{`SELECT task_id FROM task_logs WHERE task_id = $1`, u.bTask},
			{`SELECT id FROM tokens WHERE user_id = $1`, u.b},
			{`SELECT id FROM users WHERE id = $1`, u.b},
		} {
			var got string
			if err := tx.QueryRow(ctx, q.sql, q.id).Scan(&got); !errors.Is(err, pgx.ErrNoRows) {
				t.Errorf("as A: %s with B's id: %q, %v; want no row", q.sql, got, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for table, rows := range dump(t, d.Super) {
		if rows != before[table] {
			t.Errorf("%s changed:\nbefore: %s\nafter:  %s", table, before[table], rows)
		}
	}
}

// dump returns every row of the tables under row-level security, as the
// superuser sees them, as one string per table.
func dump(t *testing.T, superURL string) map[string]string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows := map[string]string{}
	for table := range ownerOf {
		var all string
		err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(x::text, ';' ORDER BY x::text), '') FROM `+table+` x`).Scan(&all)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		rows[table] = all
	}
	return rows
}

// TestRLSOwnerIsForced checks FORCE: the owner that migrated the tables
// sees no row outside a transaction that says whose it is, so a deployment
// that serves with the owner's role is behind the wall too.
func TestRLSOwnerIsForced(t *testing.T) {
	d := newRLSDB(t)
	seedTwoUsers(t, d)
	ctx := t.Context()
	owner, err := pgx.Connect(ctx, d.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	for table := range ownerOf {
		if n := count(t, owner, table, "true"); n != 0 {
			t.Errorf("the owner sees %d rows of %s with no setting, want none", n, table)
		}
	}
}

// TestBypassesRLS tells the service role from the superuser.
func TestBypassesRLS(t *testing.T) {
	d := newRLSDB(t)
	ctx := t.Context()
	if bypass, err := d.service.BypassesRLS(ctx); err != nil || bypass {
		t.Errorf("service role: BypassesRLS = %v, %v; want false", bypass, err)
	}
	super, err := postgres.Open(ctx, d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	if bypass, err := super.BypassesRLS(ctx); err != nil || !bypass {
		t.Errorf("superuser: BypassesRLS = %v, %v; want true", bypass, err)
	}
}

// TestRLSSettingEndsWithItsTransaction runs every kind of store call on a
// pool of one connection, then a statement straight on that connection:
// it sees nothing, as no setting outlives the transaction or pipeline that
// made it.
func TestRLSSettingEndsWithItsTransaction(t *testing.T) {
	d := newRLSDB(t)
	u := seedTwoUsers(t, d)
	ctx := t.Context()
	url := d.Service + " pool_max_conns=1"
	if strings.Contains(d.Service, "://") {
		url = d.Service + "&pool_max_conns=1"
		if !strings.Contains(d.Service, "?") {
			url = d.Service + "?pool_max_conns=1"
		}
	}
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	calls := map[string]func() error{
		"View (a transaction)": func() error {
			return db.View(ctx, u.b, func(tx vault.Tx) error {
				_, err := tx.Secret(ctx, u.bSecret.ID)
				return err
			})
		},
		"SecretsForProfile (a pipeline)": func() error {
			_, err := db.SecretsForProfile(ctx, u.b, u.bProfile.ID)
			return err
		},
		"Task (a pipeline)": func() error {
			_, err := db.Task(ctx, u.b, u.bTask)
			return err
		},
		"Token (system mode, a pipeline)": func() error {
			_, err := db.Token(ctx, "tok_none")
			if vault.ErrorCode(err) == vault.ENOTFOUND {
				return nil
			}
			return err
		},
		"ActiveTasks (system mode, a pipeline)": func() error {
			_, err := db.ActiveTasks(ctx, "")
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, table := range []string{"secrets", "tokens", "tasks"} {
			if n, err := db.PoolCount(ctx, table); err != nil || n != 0 {
				t.Errorf("after %s, the connection sees %d rows of %s (%v), want none", name, n, table, err)
			}
		}
	}
}

// BenchmarkSecretsForProfileRLS measures the one query of the task-start
// hot path on one database, as the superuser (who passes through
// row-level security) and as the service role (under it), with other
// users' secrets in the same tables; and Token, the lookup of every API
// request, in system mode.
func BenchmarkSecretsForProfileRLS(b *testing.B) {
	d := newRLSDB(b)
	ctx := context.Background()
	super, err := postgres.Open(ctx, d.Super)
	if err != nil {
		b.Fatal(err)
	}
	defer super.Close()
	svc := newService(b, d.service, vault.Options{MaxSecrets: 10_000})
	for range 9 { // neighbours
		seedProfile(b, svc, 100)
	}
	for _, n := range []int{10, 100, 1000} {
		user, profile := seedProfile(b, svc, n)
		for _, as := range []struct {
			name string
			db   *postgres.DB
		}{{"superuser", super}, {"service-role", d.service}} {
			b.Run(fmt.Sprintf("secrets=%d/%s", n, as.name), func(b *testing.B) {
				for b.Loop() {
					list, err := as.db.SecretsForProfile(ctx, user, profile)
					if err != nil || len(list) != n {
						b.Fatalf("SecretsForProfile = %d, %v; want %d", len(list), err, n)
					}
				}
			})
		}
	}
	_, token, err := svc.CreateUser(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("token/service-role", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := svc.Authenticate(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
}
