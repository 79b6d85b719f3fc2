package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// countingDB counts the token reads that reach the database, so a test
// can tell a cached check from one the store answered.
type countingDB struct {
	*postgres.DB
	reads atomic.Int64
}

func (c *countingDB) Token(ctx context.Context, id string) (*vault.Token, error) {
	c.reads.Add(1)
	return c.DB.Token(ctx, id)
}

// process is one envvault process on the shared database: a pool of its
// own and a service with its own token cache.
type process struct {
	db  *countingDB
	svc *vault.Service
}

func newProcess(t *testing.T, url string) *process {
	t.Helper()
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := &process{db: &countingDB{DB: db}}
	p.svc = vault.NewService(p.db, testvault.MustKeyring(t), vault.Options{})
	return p
}

// cached reports whether p's next check of token is answered from its
// cache: two checks in a row, neither reaching the database after the
// first.
func (p *process) cached(t *testing.T, token string) bool {
	t.Helper()
	if _, err := p.svc.AuthenticateToken(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	before := p.db.reads.Load()
	if _, err := p.svc.AuthenticateToken(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	return p.db.reads.Load() == before
}

// await polls cond every 10 ms until it holds or d passes, and returns
// how long it took.
func await(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRevocationReachesOtherProcesses: a token cached by a second process
// on the same PostgreSQL is refused there within a second of its
// revocation by the first (LISTEN/NOTIFY), not after the cache's TTL;
// and while the second process's listener is cut off, its cache serves
// nothing (every check reaches the database) until it listens again.
func TestRevocationReachesOtherProcesses(t *testing.T) {
	db, url := openDB(t)
	_ = db
	a, b := newProcess(t, url), newProcess(t, url)
	if err := a.svc.CheckKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	alice := mustUser(t, a.svc)
	_, token, err := a.svc.IssueToken(t.Context(), alice, vault.TokenSpec{Name: "leaked", Scope: vault.TokenFull})
	if err != nil {
		t.Fatal(err)
	}
	id := token[:len(vault.PrefixToken)+21]
	// B's feed comes up, then B answers from its cache.
	await(t, 10*time.Second, "process B caches the token", func() bool { return b.cached(t, token) })

	if err := a.svc.RevokeToken(t.Context(), alice, id, ""); err != nil {
		t.Fatal(err)
	}
	took := await(t, time.Second, "process B refuses the revoked token", func() bool {
		_, err := b.svc.AuthenticateToken(t.Context(), token)
		return vault.ErrorCode(err) == vault.EUNAUTHORIZED
	})
	t.Logf("process B refused the revoked token %v after the revocation (cache TTL %v)", took, vault.DefaultTokenCacheTTL)

	// Cut B's listener: its cache empties and serves nothing until the
	// listener is back.
	_, other, err := a.svc.IssueToken(t.Context(), alice, vault.TokenSpec{Name: "other", Scope: vault.TokenFull})
	if err != nil {
		t.Fatal(err)
	}
	await(t, 10*time.Second, "process B caches another token", func() bool { return b.cached(t, other) })
	super, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(context.Background())
	const listeners = `FROM pg_stat_activity WHERE application_name = 'envvault token feed' AND datname = current_database()`
	await(t, 10*time.Second, "both processes listen", func() bool {
		var n int
		if err := super.QueryRow(t.Context(), `SELECT count(*) `+listeners).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 2
	})
	var killed int
	if err := super.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) `+listeners).Scan(&killed); err != nil || killed != 2 {
		t.Fatalf("terminate the two listeners: %d, %v", killed, err)
	}
	await(t, 5*time.Second, "process B stops serving from its cache", func() bool { return !b.cached(t, other) })
	await(t, 10*time.Second, "process B caches again once it listens again", func() bool { return b.cached(t, other) })
	// And it hears revocations again.
	if err := a.svc.RevokeToken(t.Context(), alice, other[:len(vault.PrefixToken)+21], ""); err != nil {
		t.Fatal(err)
	}
	await(t, time.Second, "process B refuses the second revoked token", func() bool {
		_, err := b.svc.AuthenticateToken(t.Context(), other)
		return vault.ErrorCode(err) == vault.EUNAUTHORIZED
	})
}
