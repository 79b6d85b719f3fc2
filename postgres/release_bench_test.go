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

	logmask "github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// BenchmarkReleaseRLS measures GetDecryptedForProfile as the service role,
// under row-level security, against its floor, measured in the same loop:
// each op runs the floor and envvault in turn, so both see the same load.
// The floor is a minimal pgx query, as the same role with the same setting
// in one pipeline, returning the same sealed rows (id, name, sealed value,
// sealed key), and the bare two-layer AES-256-GCM opens of those rows (the
// data key under the master key, an AES key schedule and GCM set-up for the
// data key, the value under it) into reused buffers.
//
// The secrets (half `all`, half `agents` granting the profile and one
// other, 40-byte values, nine neighbours of 100 in the same tables) are
// sealed as CreateSecret seals them and bulk-loaded with COPY, with
// autovacuum off on the tables: the fresh/ run sees tables never analysed,
// as right after an import; the analysed/ run follows an ANALYZE. Each op
// of secrets=100+1000 runs the floor and envvault for 100 secrets and for
// 1000: x-floor-100 and x-floor-1000 are envvault over the floor, x-100 is
// envvault's time for 1000 over its time for 100 (linear is 10), and
// x-100-floor the same for the floor, whose own growth it is to be judged
// against. Times are medians of the ops (ms-…).
//
// task-env/secrets=10000 is what a task start does with the vault for a
// user of 10,000 secrets before its container starts: ReleaseForTask
// (decryption and its task.release audit event) and orchestrator.Merge
// (ms-task-env), against the floor of the same query and opens; each op
// also runs the decryption alone (ms-decrypt; ms-task-env less it is the
// record and the merge) and, once the env is made, builds the log masker
// of the values (ms-masker), which the orchestrator builds after the
// container has started, in the goroutine that copies its logs
// (ms-with-masker is the whole).
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
	seeded := map[int][2]string{}
	for _, n := range []int{100, 1000, 10_000} {
		u, p := seedRelease(b, svc, keys, d.Super, n)
		seeded[n] = [2]string{u, p}
	}
	release := func(b *testing.B, n int) (floorFn, envFn func()) {
		user, profile := seeded[n][0], seeded[n][1]
		return func() { floor.run(b, user, profile, n) }, func() {
			got, err := svc.GetDecryptedForProfile(ctx, user, profile)
			if err != nil || len(got) != n {
				b.Fatalf("GetDecryptedForProfile: %d names, %v; want %d", len(got), err, n)
			}
		}
	}
	for _, phase := range []string{"fresh", "analysed"} {
		if phase == "analysed" {
			superExec(b, d.Super, `ANALYZE secrets`, `ANALYZE secret_grants`, `ANALYZE profiles`)
		}
		b.Run(phase+"/secrets=100+1000", func(b *testing.B) {
			floor100, env100 := release(b, 100)
			floor1000, env1000 := release(b, 1000)
			ms := interleave(b, floor100, env100, floor1000, env1000)
			b.ReportMetric(ms[1], "ms-envvault-100")
			b.ReportMetric(ms[0], "ms-floor-100")
			b.ReportMetric(ms[1]/ms[0], "x-floor-100")
			b.ReportMetric(ms[3]/ms[2], "x-floor-1000")
			b.ReportMetric(ms[3]/ms[1], "x-100")
			b.ReportMetric(ms[2]/ms[0], "x-100-floor")
		})
	}
	user, profile := seeded[10_000][0], seeded[10_000][1]
	b.Run("task-env/secrets=10000", func(b *testing.B) {
		attempt := 0
		var envs, mask []time.Duration
		ms := interleave(b, func() {
			floor.run(b, user, profile, 10_000)
		}, func() {
			attempt++
			start := time.Now()
			task := vault.NewID(vault.PrefixTask)
			released, err := svc.ReleaseForTask(ctx, user, vault.TaskRelease{TaskID: task, ProfileID: profile, Attempt: attempt})
			if err != nil || len(released) != 10_000 {
				b.Fatalf("ReleaseForTask: %d secrets, %v; want 10000", len(released), err)
			}
			env, _ := orchestrator.Merge(orchestrator.MergeInput{Secrets: released, TaskID: task, Prompt: "bench"})
			if len(env) != 10_002 {
				b.Fatalf("merged env of %d names, want 10002", len(env))
			}
			mid := time.Now()
			values := make([]string, len(released))
			for i, r := range released {
				values[i] = r.Value
			}
			m := logmask.NewWriter(io.Discard, values)
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
			envs, mask = append(envs, mid.Sub(start)), append(mask, time.Since(mid))
		}, func() {
			if _, err := svc.GetDecryptedForProfileWithSources(ctx, user, profile); err != nil {
				b.Fatal(err)
			}
		})
		taskEnv := medianMs(envs)
		b.ReportMetric(taskEnv, "ms-task-env")
		b.ReportMetric(ms[0], "ms-floor")
		b.ReportMetric(taskEnv/ms[0], "x-floor")
		b.ReportMetric(ms[2], "ms-decrypt")
		b.ReportMetric(medianMs(mask), "ms-masker")
		b.ReportMetric(ms[1], "ms-with-masker")
	})
}

// interleave runs each of fns once per op, in turn, so that all see the
// same load, and returns the median of each one's times in ms (medians: on
// a machine shared with other work, a few ops stalled by another process
// would move a mean far more than a median).
func interleave(b *testing.B, fns ...func()) []float64 {
	times := make([][]time.Duration, len(fns))
	for b.Loop() {
		for i, fn := range fns {
			start := time.Now()
			fn()
			times[i] = append(times[i], time.Since(start))
		}
	}
	ms := make([]float64, len(fns))
	for i := range fns {
		ms[i] = medianMs(times[i])
	}
	return ms
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
