package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/internal/writefloor"
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
// A third, sql-group-floor, is the same statements of many clients'
// writes sent as the group commit sends them (postgres/group.go): the
// writes waiting at the time in one transaction, each after its user's
// setting, in two round trips and one COMMIT for the group, by two
// senders, without envvault.
//
// users/ gives each client a user of its own; secrets/ gives one user a
// secret per client. Metrics: writes/s of each arm, x-floor (envvault's
// rate over the bare commits': 1 is as fast) and x-sql-floor (over its
// own statements'), x-sql-group-floor (over them grouped).
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
				var tf, ts, tg, te time.Duration
				for b.Loop() {
					start := time.Now()
					parallelWrites(b, clients, perOp, func(int, int) error {
						_, err := floor.Exec(ctx, `INSERT INTO bench_floor (v) VALUES ($1)`, []byte(strings.Repeat("f", 64)))
						return err
					})
					mid := time.Now()
					parallelWrites(b, clients, perOp, func(c, _ int) error {
						return writefloor.Write(ctx, sqlFloor, writefloor.Target{User: targets[c][0], Secret: targets[c][1]})
					})
					mid2 := time.Now()
					groups := startGroupFloor(ctx, sqlFloor)
					parallelWrites(b, clients, perOp, func(c, _ int) error {
						return groups.write(targets[c][0], targets[c][1])
					})
					groups.stop()
					mid3 := time.Now()
					parallelWrites(b, clients, perOp, func(c, i int) error {
						v := fmt.Sprintf("%064d", i)
						_, err := svc.UpdateSecret(ctx, targets[c][0], targets[c][1], vault.SecretPatch{Value: &v})
						return err
					})
					te += time.Since(mid3)
					tg += mid3.Sub(mid2)
					ts += mid2.Sub(mid)
					tf += mid.Sub(start)
				}
				n := float64(b.N * clients * perOp)
				b.ReportMetric(n/te.Seconds(), "writes/s")
				b.ReportMetric(n/tf.Seconds(), "floor-writes/s")
				b.ReportMetric(n/ts.Seconds(), "sql-floor-writes/s")
				b.ReportMetric(tf.Seconds()/te.Seconds(), "x-floor")
				b.ReportMetric(n/tg.Seconds(), "sql-group-floor-writes/s")
				b.ReportMetric(ts.Seconds()/te.Seconds(), "x-sql-floor")
				b.ReportMetric(tg.Seconds()/te.Seconds(), "x-sql-group-floor")
			})
		}
	}
}

// groupFloor sends the writes its clients wait for, grouped as the group
// commit groups them (writefloor.WriteGroup): the sql-group-floor arm of
// BenchmarkConcurrentWrites.
type groupFloor struct {
	queue chan groupFloorWrite
	wg    sync.WaitGroup
}

type groupFloorWrite struct {
	user, secret string
	done         chan error
}

// startGroupFloor starts two senders, as the group commit has, each
// sending the writes queued at the time, up to 64, as one transaction.
func startGroupFloor(ctx context.Context, pool *pgxpool.Pool) *groupFloor {
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
				targets := make([]writefloor.Target, len(batch))
				for i, w := range batch {
					targets[i] = writefloor.Target{User: w.user, Secret: w.secret}
				}
				err := writefloor.WriteGroup(ctx, pool, targets)
				for _, w := range batch {
					w.done <- err
				}
			}
		})
	}
	return g
}

func (g *groupFloor) write(user, secret string) error {
	w := groupFloorWrite{user, secret, make(chan error, 1)}
	g.queue <- w
	return <-w.done
}

func (g *groupFloor) stop() {
	close(g.queue)
	g.wg.Wait()
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
