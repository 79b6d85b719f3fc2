package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// rotateBenchSecrets is how many secrets BenchmarkRotate re-wraps.
const rotateBenchSecrets = 100_000

// BenchmarkRotate measures what `envvault keys rotate` does, on
// PostgreSQL: Service.RotateKeys re-wrapping the data keys of 100,000
// secrets (1,000 users of 100) from one master key to the next, as the
// service role under row-level security, in batches of 500 (the default)
// and 2,000. Each op is one whole rotation; the seeding is not measured.
//
// The secrets are sealed in Go exactly as CreateSecret seals them
// (vault.SealSecret), with 40-byte values, and loaded with COPY. Every
// rotation starts from the master key the previous one ended on, so no
// re-seeding is needed between ops.
//
//	go test ./postgres -run '^$' -bench Rotate -benchtime=1x
func BenchmarkRotate(b *testing.B) {
	const users = 1000
	d := newRLSDB(b)
	ctx := context.Background()
	key := mustBenchKey(b)
	seedSealed(b, d.service, d.Super, key, users, rotateBenchSecrets/users)

	for _, batch := range []int{vault.DefaultRotateBatchSize, 2000} {
		b.Run(fmt.Sprintf("secrets=%d/batch=%d", rotateBenchSecrets, batch), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				next := mustBenchKey(b)
				keys, err := seal.NewKeyring(next, key)
				if err != nil {
					b.Fatal(err)
				}
				svc := vault.NewService(d.service, keys, vault.Options{})
				start := time.Now()
				res, err := svc.RotateKeys(ctx, vault.RotateOptions{BatchSize: batch})
				total += time.Since(start)
				if err != nil {
					b.Fatalf("rotate: %v", err)
				}
				if res.Rotated != rotateBenchSecrets || len(res.Remaining) != 0 {
					b.Fatalf("rotation %+v, want %d rotated", res, rotateBenchSecrets)
				}
				key = next
			}
			secs := total.Seconds() / float64(b.N)
			b.ReportMetric(secs, "s/rotation")
			b.ReportMetric(rotateBenchSecrets/secs, "keys/s")
		})
	}

	// Afterwards the last key alone passes start-up: every data key moved.
	keys, err := seal.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	svc := vault.NewService(d.service, keys, vault.Options{})
	if err := svc.CheckKeys(ctx); err != nil {
		b.Fatalf("check keys with the last key alone: %v", err)
	}
}

func mustBenchKey(b *testing.B) []byte {
	b.Helper()
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// seedSealed creates users through the service on store, and perUser
// secrets for each, sealed under key as CreateSecret seals them, loaded
// with one COPY as the superuser of superURL (which row-level security
// lets through).
func seedSealed(b *testing.B, store vault.Store, superURL string, key []byte, users, perUser int) {
	b.Helper()
	ctx := context.Background()
	keys, err := seal.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	svc := vault.NewService(store, keys, vault.Options{})
	if err := svc.CheckKeys(ctx); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, 0, users*perUser)
	for range users {
		u, _, err := svc.CreateUser(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		for i := range perUser {
			s := &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: u.ID, Name: fmt.Sprintf("SECRET_%04d", i),
				Scope: vault.ScopeAll, Version: 1, CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt}
			if err := vault.SealSecret(keys, s, value40()); err != nil {
				b.Fatal(err)
			}
			rows = append(rows, []any{s.ID, s.UserID, s.Name, string(s.Scope), s.Description, s.Version,
				s.SealedValue, s.SealedKey, s.MasterKeyID, s.CreatedAt, s.UpdatedAt})
		}
	}
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"secrets"},
		[]string{"id", "user_id", "name", "scope", "description", "version", "sealed_value", "sealed_key", "master_key_id", "created_at", "updated_at"},
		pgx.CopyFromRows(rows))
	if err != nil || n != int64(len(rows)) {
		b.Fatalf("copy %d secrets: %d, %v", len(rows), n, err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE secrets`); err != nil {
		b.Fatal(err)
	}
}
