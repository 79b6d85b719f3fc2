package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// BenchmarkConcurrentWrites measures audited writes (UpdateSecret with a
// new 64-byte value: a new version, the old one kept, its secret.update
// event) from several clients at once, as the service role under
// row-level security, against a floor measured in the same loop: each op
// runs the floor and then envvault with the same clients. The floor is
// one durable commit per write, at the same concurrency: a one-row INSERT
// of 64 bytes in its own transaction, as the superuser. Run it with fsync
// and synchronous_commit on, or the commits cost nothing.
//
// A second floor, sql-floor, is the write's own SQL: the statements a
// new value sends (BEGIN, the setting, the user's check, the lock, the
// secret with its kept versions; then the kept version, the pruned one,
// the row, the audit event, COMMIT), in the same two round trips, as the
// service role, without envvault (no sealing, no link pass): how close
// the vault comes to the database work its write cannot avoid.
//
// users/ gives each client a user of its own; secrets/ gives one user a
// secret per client. Metrics: writes/s of each arm, x-floor (envvault's
// rate over the bare commits': 1 is as fast) and x-sql-floor (over its
// own statements').
//
//	go test ./postgres -run '^$' -bench ConcurrentWrites -benchtime 20x
func BenchmarkConcurrentWrites(b *testing.B) {
	d := newRLSDB(b)
	ctx := context.Background()
	keys, err := seal.NewKeyring(mustBenchKey(b))
	if err != nil {
		b.Fatal(err)
	}
	svc := vault.NewService(d.service, keys, vault.Options{})
	if err := svc.CheckKeys(ctx); err != nil {
		b.Fatal(err)
	}
	superExec(b, d.Super, `CREATE TABLE bench_floor (id bigserial PRIMARY KEY, v bytea NOT NULL)`)
	floor, err := pgxpool.New(ctx, d.Super)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(floor.Close)
	sqlFloor, err := pgxpool.New(ctx, d.Service)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sqlFloor.Close)
	for _, mode := range []string{"users", "secrets"} {
		for _, clients := range []int{4, 16} {
			targets := seedWriters(b, svc, mode, clients)
			b.Run(fmt.Sprintf("%s/clients=%d", mode, clients), func(b *testing.B) {
				const perOp = 8 // writes per client per op
				var tf, ts, te time.Duration
				for b.Loop() {
					start := time.Now()
					parallelWrites(b, clients, perOp, func(int, int) error {
						_, err := floor.Exec(ctx, `INSERT INTO bench_floor (v) VALUES ($1)`, []byte(strings.Repeat("f", 64)))
						return err
					})
					mid := time.Now()
					parallelWrites(b, clients, perOp, func(c, _ int) error {
						return sqlFloorWrite(ctx, sqlFloor, targets[c][0], targets[c][1])
					})
					mid2 := time.Now()
					parallelWrites(b, clients, perOp, func(c, i int) error {
						v := fmt.Sprintf("%064d", i)
						_, err := svc.UpdateSecret(ctx, targets[c][0], targets[c][1], vault.SecretPatch{Value: &v})
						return err
					})
					te += time.Since(mid2)
					ts += mid2.Sub(mid)
					tf += mid.Sub(start)
				}
				n := float64(b.N * clients * perOp)
				b.ReportMetric(n/te.Seconds(), "writes/s")
				b.ReportMetric(n/tf.Seconds(), "floor-writes/s")
				b.ReportMetric(n/ts.Seconds(), "sql-floor-writes/s")
				b.ReportMetric(tf.Seconds()/te.Seconds(), "x-floor")
				b.ReportMetric(ts.Seconds()/te.Seconds(), "x-sql-floor")
			})
		}
	}
}

// sqlFloorWrite sends the statements of a new value of secret secretID
// of user, as postgres.DB's write does, in two round trips: a new version
// of the same sealed bytes, its predecessor kept, the version ten before
// deleted, an audit event. It is the sql-floor arm of
// BenchmarkConcurrentWrites.
func sqlFloorWrite(ctx context.Context, pool *pgxpool.Pool, user, secretID string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	read := &pgx.Batch{}
	read.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	read.Queue(`SELECT set_config('envvault.user_id', $1, true)`, user)
	read.Queue(`SELECT FROM users WHERE id = $1`, user)
	read.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, user+"/"+secretID)
	var version int32
	var versions []int32
	read.Queue(`SELECT s.version, v.versions FROM secrets s CROSS JOIN LATERAL (
			SELECT array_agg(version ORDER BY version DESC) FROM secret_versions
			WHERE secret_id = s.id AND user_id = s.user_id) v(versions)
		WHERE s.id = $1 AND s.user_id = $2`, secretID, user).QueryRow(func(r pgx.Row) error { return r.Scan(&version, &versions) })
	if err := conn.SendBatch(ctx, read).Close(); err != nil {
		return err
	}
	write := &pgx.Batch{}
	write.Queue(`INSERT INTO secret_versions (secret_id, user_id, version, name, sealed_value, sealed_key, master_key_id, replaced_at)
		SELECT id, user_id, version, name, sealed_value, sealed_key, master_key_id, now() FROM secrets WHERE id = $1 AND user_id = $2`, secretID, user)
	write.Queue(`DELETE FROM secret_versions WHERE secret_id = $1 AND user_id = $2 AND version = ANY($3)`,
		secretID, user, []int32{version - vault.DefaultKeepVersions})
	write.Queue(`UPDATE secrets SET version = version + 1, updated_at = now() WHERE id = $1 AND user_id = $2`, secretID, user)
	write.Queue(`INSERT INTO audit_events (time, user_id, token_id, action, target_type, target_id, details)
		VALUES (now(), $1, '', 'secret.update', 'secret', $2, $3)`, user, secretID,
		map[string]any{"name": "W", "scope": "all", "profile_ids": []string{}, "version": version + 1, "changed": []string{"value"}})
	write.Queue(`COMMIT`)
	return conn.SendBatch(ctx, write).Close()
}

// seedWriters returns a (user, secret) per client: each of its own user
// (mode users), or all of one user (mode secrets).
func seedWriters(b *testing.B, svc *vault.Service, mode string, clients int) [][2]string {
	b.Helper()
	ctx := context.Background()
	var out [][2]string
	var user string
	for c := range clients {
		if mode == "users" || c == 0 {
			u, _, err := svc.CreateUser(ctx, fmt.Sprintf("%s-%d-%d", mode, clients, c))
			if err != nil {
				b.Fatal(err)
			}
			user = u.ID
		}
		sec, err := svc.CreateSecret(ctx, user, vault.SecretInput{Name: fmt.Sprintf("W%d", c), Value: strings.Repeat("v", 64)})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, [2]string{user, sec.ID})
	}
	return out
}

// parallelWrites runs perClient calls of write in each of clients
// goroutines and fails b on the first error.
func parallelWrites(b *testing.B, clients, perClient int, write func(client, i int) error) {
	var wg sync.WaitGroup
	var failed atomic.Value
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				if err := write(c, i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}
