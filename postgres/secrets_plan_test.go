package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// TestForProfilePlanWithoutStatistics explains the query of
// SecretsForProfile as the service role, as the store runs it, right after
// a bulk load (the tables never analysed) and after ANALYZE: the plan
// reads the secrets and grants the same way, through their indexes, never
// by scanning the tables. (Without the store's NoSeqScan, PostgreSQL
// switches to scanning all three tables once it learns that the user
// holds half of them.)
func TestForProfilePlanWithoutStatistics(t *testing.T) {
	d := newRLSDB(t)
	superExec(t, d.Super,
		`ALTER TABLE secrets SET (autovacuum_enabled = false)`,
		`ALTER TABLE secret_grants SET (autovacuum_enabled = false)`,
		`ALTER TABLE profiles SET (autovacuum_enabled = false)`)
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := vault.NewService(d.service, keys, vault.Options{MaxSecrets: 10_000})
	for range 4 {
		seedRelease(t, svc, keys, d.Super, 500)
	}
	user, profile := seedRelease(t, svc, keys, d.Super, 2000)

	fresh := explainForProfile(t, d.Service, user, profile)
	superExec(t, d.Super, `ANALYZE secrets`, `ANALYZE secret_grants`, `ANALYZE profiles`)
	analysed := explainForProfile(t, d.Service, user, profile)
	for _, plan := range []string{fresh, analysed} {
		if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, "Index Scan on secrets_user_name") ||
			!strings.Contains(plan, "hashed SubPlan") || !strings.Contains(plan, "Index Scan on secret_grants_profile_name_key") {
			t.Errorf("the plan does not read the secrets and the profile's grants, once, by their indexes:\n%s", plan)
		}
	}
	// Which index finds the one profile may change; how the user's
	// secrets and grants are read may not.
	if a, b := secretsPlan(fresh), secretsPlan(analysed); a != b {
		t.Errorf("the plan of the secrets changes once the tables are analysed:\nfresh:\n%s\nanalysed:\n%s", fresh, analysed)
	}
}

// secretsPlan is the part of a plan that reads secrets and grants.
func secretsPlan(plan string) string {
	_, after, _ := strings.Cut(plan, "on secrets s")
	return after
}

// explainForProfile returns the plan, without costs, of the query of
// SecretsForProfile in a transaction set up as the store sets it up.
func explainForProfile(t *testing.T, url, user, profile string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('envvault.user_id', $1, true)`, user); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, postgres.NoSeqScan); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `EXPLAIN (COSTS OFF) `+postgres.ForProfileQuery, profile, user)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
