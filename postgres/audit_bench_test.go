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
// users/ gives each client a user of its own; secrets/ gives one user a
// secret per client. Metrics: writes/s of each arm and x-floor, envvault's
// rate over the floor's (1 is as fast as bare commits).
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
	for _, mode := range []string{"users", "secrets"} {
		for _, clients := range []int{4, 16} {
			targets := seedWriters(b, svc, mode, clients)
			b.Run(fmt.Sprintf("%s/clients=%d", mode, clients), func(b *testing.B) {
				const perOp = 8 // writes per client per op
				var tf, te time.Duration
				for b.Loop() {
					start := time.Now()
					parallelWrites(b, clients, perOp, func(int, int) error {
						_, err := floor.Exec(ctx, `INSERT INTO bench_floor (v) VALUES ($1)`, []byte(strings.Repeat("f", 64)))
						return err
					})
					mid := time.Now()
					parallelWrites(b, clients, perOp, func(c, i int) error {
						v := fmt.Sprintf("%064d", i)
						_, err := svc.UpdateSecret(ctx, targets[c][0], targets[c][1], vault.SecretPatch{Value: &v})
						return err
					})
					te += time.Since(mid)
					tf += mid.Sub(start)
				}
				n := float64(b.N * clients * perOp)
				b.ReportMetric(n/te.Seconds(), "writes/s")
				b.ReportMetric(n/tf.Seconds(), "floor-writes/s")
				b.ReportMetric(tf.Seconds()/te.Seconds(), "x-floor")
			})
		}
	}
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
