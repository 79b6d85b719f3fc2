package postgres_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// BenchmarkReleaseRLS measures GetDecryptedForProfile as the service role,
// under row-level security, against its floor measured in the same loop:
// each op runs the floor once and envvault once, alternately, so both see
// the same load. The floor is a minimal pgx query, as the same role with
// the same setting in one pipeline, returning the same sealed rows (id,
// name, sealed value, sealed key), and the bare two-layer AES-256-GCM opens
// of those rows (the data key under the master key, an AES key schedule
// and GCM set-up for the data key, the value under it) into reused buffers.
//
// The secrets (half `all`, half `agents` granting the profile and one
// other, 40-byte values, nine neighbours of 100 in the same tables) are
// sealed as CreateSecret seals them and bulk-loaded with COPY, with
// autovacuum off on the tables: the fresh/ runs see tables never analysed,
// as right after an import; the analysed/ runs follow an ANALYZE.
//
// Metrics: ms-envvault and ms-floor (medians per call), x-floor (their
// ratio), and for 1000 secrets x-100 (envvault's time over its time for
// 100 in the same phase: linear is 10; x-100-floor is the same for the
// floor, whose own growth it is to be judged against). task-env/secrets=10000 is what a task start
// does with the vault for a user of 10,000 secrets: ReleaseForTask
// (decryption and its task.release audit event) and the log masker built
// from the values; its floor is the same query and opens. It also reports
// the medians of its parts: ms-decrypt (the release alone, measured again
// apart, not counted in ms-envvault), ms-record (ReleaseForTask less that)
// and ms-masker.
//
//	go test ./postgres -run '^$' -bench ReleaseRLS -benchtime 200x
func BenchmarkReleaseRLS(b *testing.B) {
	d := newRLSDB(b)
	ctx := context.Background()
	superExec(b, d.Super,
		`ALTER TABLE secrets SET (autovacuum_enabled = false)`,
		`ALTER TABLE secret_grants SET (autovacuum_enabled = false)`,
		`ALTER TABLE profiles SET (autovacuum_enabled = false)`)
	key := mustBenchKey(b)
	keys, err := seal.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	svc := vault.NewService(d.service, keys, vault.Options{MaxSecrets: 20_000})
	if err := svc.CheckKeys(ctx); err != nil {
		b.Fatal(err)
	}
	floor := newFloor(b, d.Service, key)
	for range 9 {
		seedRelease(b, svc, keys, d.Super, 100)
	}
	sizes := []int{100, 1000}
	seeded := map[int][2]string{}
	for _, n := range append(sizes, 10_000) {
		u, p := seedRelease(b, svc, keys, d.Super, n)
		seeded[n] = [2]string{u, p}
	}
	for _, phase := range []string{"fresh", "analysed"} {
		if phase == "analysed" {
			superExec(b, d.Super, `ANALYZE secrets`, `ANALYZE secret_grants`, `ANALYZE profiles`)
		}
		var env100, floor100 float64
		for _, n := range sizes {
			user, profile := seeded[n][0], seeded[n][1]
			b.Run(fmt.Sprintf("%s/secrets=%d", phase, n), func(b *testing.B) {
				env, fl := sideBySide(b, func() {
					floor.run(b, user, profile, n)
				}, func() time.Duration {
					got, err := svc.GetDecryptedForProfile(ctx, user, profile)
					if err != nil || len(got) != n {
						b.Fatalf("GetDecryptedForProfile: %d names, %v; want %d", len(got), err, n)
					}
					return 0
				})
				if n == 100 {
					env100, floor100 = env, fl
				} else if env100 > 0 {
					b.ReportMetric(env/env100, "x-100")
					b.ReportMetric(fl/floor100, "x-100-floor")
				}
			})
		}
	}
	user, profile := seeded[10_000][0], seeded[10_000][1]
	b.Run("task-env/secrets=10000", func(b *testing.B) {
		attempt := 0
		var decrypt, record, mask []time.Duration
		sideBySide(b, func() {
			floor.run(b, user, profile, 10_000)
		}, func() time.Duration {
			attempt++
			start := time.Now()
			released, err := svc.ReleaseForTask(ctx, user, vault.TaskRelease{TaskID: vault.NewID(vault.PrefixTask), ProfileID: profile, Attempt: attempt})
			if err != nil || len(released) != 10_000 {
				b.Fatalf("ReleaseForTask: %d secrets, %v; want 10000", len(released), err)
			}
			mid := time.Now()
			values := make([]string, len(released))
			for i, r := range released {
				values[i] = r.Value
			}
			m := runner.NewMasker(io.Discard, values)
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
			mask = append(mask, time.Since(mid))
			// The release alone, without its record, to split the two.
			t0 := time.Now()
			if _, err := svc.GetDecryptedForProfileWithSources(ctx, user, profile); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			decrypt = append(decrypt, d)
			record = append(record, max(mid.Sub(start)-d, 0))
			return d
		})
		b.ReportMetric(medianMs(decrypt), "ms-decrypt")
		b.ReportMetric(medianMs(record), "ms-record")
		b.ReportMetric(medianMs(mask), "ms-masker")
	})
}

// sideBySide runs floor and envvault once per op, alternately, and
// reports the medians of their times per op (less the part envvault says
// is not its own, a measurement of a part of it) and the ratio of the
// medians (medians: on a machine shared with other work, a few ops stalled
// by another process would move a mean far more than a median). It
// returns the two medians in ms.
func sideBySide(b *testing.B, floor func(), envvault func() (untimed time.Duration)) (envMs, floorMs float64) {
	var tf, te []time.Duration
	for b.Loop() {
		start := time.Now()
		floor()
		mid := time.Now()
		untimed := envvault()
		te = append(te, time.Since(mid)-untimed)
		tf = append(tf, mid.Sub(start))
	}
	envMs, floorMs = medianMs(te), medianMs(tf)
	b.ReportMetric(envMs, "ms-envvault")
	b.ReportMetric(floorMs, "ms-floor")
	b.ReportMetric(envMs/floorMs, "x-floor")
	return envMs, floorMs
}

func medianMs(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2].Microseconds()) / 1000
}

// seedRelease creates through the service a user with a profile and
// another, and loads n secrets for them with COPY as the superuser: half
// `all`, half `agents` granting both profiles, sealed as CreateSecret seals
// them.
func seedRelease(b testing.TB, svc *vault.Service, keys *seal.Keyring, superURL string, n int) (userID, profileID string) {
	b.Helper()
	ctx := context.Background()
	user := mustUser(b, svc)
	prof := mustProfile(b, svc, user, "bench")
	other := mustProfile(b, svc, user, "other")
	now := time.Now().UTC().Truncate(time.Microsecond)
	var secrets, grants [][]any
	for i := range n {
		s := &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: user, Name: fmt.Sprintf("ALL_SECRET_%05d", i),
			Scope: vault.ScopeAll, Version: 1, CreatedAt: now, UpdatedAt: now}
		if i%2 == 1 {
			s.Name, s.Scope = fmt.Sprintf("AGENT_SECRET_%05d", i), vault.ScopeAgents
			grants = append(grants, []any{s.ID, prof.ID, user, s.Name}, []any{s.ID, other.ID, user, s.Name})
		}
		if err := vault.SealSecret(keys, s, value40()); err != nil {
			b.Fatal(err)
		}
		secrets = append(secrets, []any{s.ID, s.UserID, s.Name, string(s.Scope), s.Description, s.Version,
			s.SealedValue, s.SealedKey, s.MasterKeyID, s.CreatedAt, s.UpdatedAt})
	}
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"secrets", []string{"id", "user_id", "name", "scope", "description", "version", "sealed_value", "sealed_key", "master_key_id", "created_at", "updated_at"}, secrets},
		{"secret_grants", []string{"secret_id", "profile_id", "user_id", "name"}, grants},
	} {
		if got, err := conn.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil || got != int64(len(c.rows)) {
			b.Fatalf("copy %d rows into %s: %d, %v", len(c.rows), c.table, got, err)
		}
	}
	return user, prof.ID
}

// floor is the least a release can do: one pipelined query as the
// service role and the bare opens.
type floor struct {
	pool   *pgxpool.Pool
	master cipher.AEAD
	aad    []byte
	dek    []byte
	pt     []byte
}

func newFloor(b *testing.B, url string, key []byte) *floor {
	b.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	master, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return &floor{pool: pool, master: master, aad: make([]byte, 0, 256), dek: make([]byte, 0, 32), pt: make([]byte, 0, 256)}
}

const floorQuery = `SELECT id, name, sealed_value, sealed_key FROM secrets
	WHERE user_id = $1 AND (scope = 'all' OR id IN (SELECT secret_id FROM secret_grants WHERE profile_id = $2))`

// run reads the profile's sealed rows and opens each; it fails b unless
// it opened want values.
func (f *floor) run(b *testing.B, user, profile string, want int) {
	ctx := context.Background()
	batch := &pgx.Batch{}
	batch.Queue(`SELECT set_config('envvault.user_id', $1, true)`, user)
	batch.Queue(floorQuery, user, profile)
	br := f.pool.SendBatch(ctx, batch)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		b.Fatal(err)
	}
	rows, err := br.Query()
	if err != nil {
		b.Fatal(err)
	}
	var (
		id, name string
		sv, sk   []byte
		opened   int
	)
	for rows.Next() {
		if err := rows.Scan(&id, &name, &sv, &sk); err != nil {
			b.Fatal(err)
		}
		if err := f.open(user, id, name, sv, sk); err != nil {
			b.Fatalf("open %s: %v", id, err)
		}
		opened++
	}
	if err := rows.Err(); err != nil || opened != want {
		b.Fatalf("floor opened %d, want %d: %v", opened, want, err)
	}
}

// The sealed message format (package seal) and the AAD of a value and a
// data key (vault/sealing.go), written out.
const (
	nonceAt, headerSize = 5, 17
	labelValue          = "envvault secret value v1"
	labelDataKey        = "envvault data key v1"
)

func (f *floor) open(user, id, name string, sv, sk []byte) error {
	f.aad = appendAAD(f.aad[:0], labelDataKey, user, id)
	dek, err := f.master.Open(f.dek[:0], sk[nonceAt:headerSize], sk[headerSize:], f.aad)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(dek)
	if err != nil {
		return err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	f.aad = appendAAD(f.aad[:0], labelValue, user, id, name)
	f.pt, err = gcm.Open(f.pt[:0], sv[nonceAt:headerSize], sv[headerSize:], f.aad)
	return err
}

func appendAAD(b []byte, label string, parts ...string) []byte {
	b = append(b, label...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
