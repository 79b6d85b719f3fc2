package postgres_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// TestConformance runs the one conformance suite on PostgreSQL with the
// store connected as the superuser, each subtest on a fresh database.
// TestRLSConformance runs it as the row-level-security service role.
func TestConformance(t *testing.T) {
	storetest.Run(t, newHarness)
}

// newHarness is a fresh database, the store on it as the superuser, and
// SQL beside the store on connections of its own, as an operator's psql
// would be.
func newHarness(t *testing.T) storetest.Harness {
	t.Helper()
	db, url := openDB(t)
	return harness(t, db, url)
}

// newRLSHarness is a fresh database set up as the README says (migrated
// by the owner), the store connected as the service role, under
// row-level security, and SQL beside it as the superuser. The store prunes
// the audit trail as the owner, as `envvault audit prune` with
// DATABASE_MIGRATE_URL does: the service role may not.
func newRLSHarness(t *testing.T) storetest.Harness {
	t.Helper()
	d := newRLSDB(t)
	owner, err := postgres.Open(context.Background(), d.Owner)
	if err != nil {
		t.Fatalf("open as the owner: %v", err)
	}
	t.Cleanup(func() { owner.Close() })
	return harness(t, ownerPrunes{DB: d.service, owner: owner}, d.Super)
}

// harness is store with SQL on the database at url beside it.
func harness(t *testing.T, store storetest.Store, url string) storetest.Harness {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pool for raw SQL: %v", err)
	}
	t.Cleanup(pool.Close)
	return storetest.Harness{
		Store: store,
		Exec: func(ctx context.Context, query string, args ...any) (int64, error) {
			tag, err := pool.Exec(ctx, dollars(query), args...)
			return tag.RowsAffected(), err
		},
		QueryInt: func(ctx context.Context, query string, args ...any) (n int64, err error) {
			err = pool.QueryRow(ctx, dollars(query), args...).Scan(&n)
			return n, err
		},
		Unguard: []string{`ALTER TABLE audit_events DISABLE TRIGGER USER`},
		FailAppends: []string{
			`CREATE FUNCTION test_audit_down() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN RAISE EXCEPTION 'the audit trail is down'; END $$`,
			`CREATE TRIGGER test_audit_down BEFORE INSERT ON audit_events
				FOR EACH ROW EXECUTE FUNCTION test_audit_down()`,
		},
		RestoreAppends: []string{`DROP TRIGGER test_audit_down ON audit_events`, `DROP FUNCTION test_audit_down()`},
		SetPruneBatch:  postgres.SetPruneBatch,
	}
}

// ownerPrunes is the service role's store whose PruneAudit is the owner's.
type ownerPrunes struct {
	*postgres.DB
	owner *postgres.DB
}

func (s ownerPrunes) PruneAudit(ctx context.Context, before time.Time) (int64, vault.AuditHead, error) {
	return s.owner.PruneAudit(ctx, before)
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
