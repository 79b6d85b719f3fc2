package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

const expFunc = `CREATE FUNCTION bench_write(u text, s text, details jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE v int; kept int[];
BEGIN
  PERFORM set_config('envvault.user_id', u, true);
  PERFORM FROM users WHERE id = u;
  PERFORM pg_advisory_xact_lock(hashtextextended(u || '/' || s, 0));
  SELECT sc.version INTO v FROM secrets sc WHERE sc.id = s AND sc.user_id = u;
  INSERT INTO secret_versions (secret_id, user_id, version, name, sealed_value, sealed_key, master_key_id, replaced_at)
    SELECT id, user_id, version, name, sealed_value, sealed_key, master_key_id, now() FROM secrets WHERE id = s AND user_id = u;
  DELETE FROM secret_versions WHERE secret_id = s AND user_id = u AND version = v - 10;
  UPDATE secrets SET version = version + 1, updated_at = now() WHERE id = s AND user_id = u;
  INSERT INTO audit_events (time, user_id, token_id, action, target_type, target_id, details)
    VALUES (now(), u, '', 'secret.update', 'secret', s, details);
END $$`

func BenchmarkExpWrites(b *testing.B) {
	d := newRLSDB(b)
	ctx := context.Background()
	keys, _ := seal.NewKeyring(mustBenchKey(b))
	svc := vault.NewService(d.service, keys, vault.Options{})
	superExec(b, d.Super, expFunc, `GRANT EXECUTE ON FUNCTION bench_write TO PUBLIC`)
	pool, err := pgxpool.New(ctx, d.Service)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	for _, clients := range []int{16} {
		targets := seedWriters(b, svc, "users", clients)
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var tg, tf time.Duration
			for b.Loop() {
				t0 := time.Now()
				g := startGroupFloor(ctx, pool)
				parallelWrites(b, clients, 16, func(c, _ int) error { return g.write(targets[c][0], targets[c][1]) })
				g.stop()
				t1 := time.Now()
				f := startFuncFloor(ctx, pool)
				parallelWrites(b, clients, 16, func(c, _ int) error { return f.write(targets[c][0], targets[c][1]) })
				f.stop()
				tf += time.Since(t1)
				tg += t1.Sub(t0)
			}
			n := float64(b.N * clients * 16)
			b.ReportMetric(n/tg.Seconds(), "group/s")
			b.ReportMetric(n/tf.Seconds(), "func/s")
		})
	}
}

func startFuncFloor(ctx context.Context, pool *pgxpool.Pool) *groupFloor {
	g := &groupFloor{queue: make(chan groupFloorWrite)}
	for range 2 {
		g.wg.Go(func() {
			for w := range g.queue {
				batch := []groupFloorWrite{w}
			more:
				for len(batch) < 64 {
					select {
					case w, ok := <-g.queue:
						if !ok {
							break more
						}
						batch = append(batch, w)
					default:
						break more
					}
				}
				conn, err := pool.Acquire(ctx)
				if err == nil {
					bt := &pgx.Batch{}
					bt.Queue(`BEGIN`)
					for _, w := range batch {
						bt.Queue(`SELECT bench_write($1, $2, $3)`, w.user, w.secret, map[string]any{"name": "W", "scope": "all", "profile_ids": []string{}, "version": 3, "changed": []string{"value"}})
					}
					bt.Queue(`COMMIT`)
					err = conn.SendBatch(ctx, bt).Close()
					conn.Release()
				}
				for _, w := range batch {
					w.done <- err
				}
			}
		})
	}
	return g
}

var _ = sync.Mutex{}
