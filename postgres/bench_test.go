package postgres_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// BenchmarkGetDecryptedForProfile measures the hot path, the env a task
// receives, for a profile given 10, 100 and 1000 secrets on PostgreSQL:
// half `all`, half `agents` granting the profile (and one other), distinct
// names so every secret ends up in the env, 40-byte values.
//
// Each size also runs bare-aesgcm: the same number of 40-byte values opened
// with cipher.AEAD.Open under one AES-256-GCM key whose key schedule is
// done once, outside the loop. It is the floor no vault can beat. And
// query-only runs the store's one query alone, to show how the time splits
// between the database and the envelope.
//
// The x-bare-aesgcm metric of secrets=N is its ns/op divided by the ns/op
// of bare-aesgcm for N, both measured in this run. What it includes on
// top of the floor:
//   - one query, a round trip to PostgreSQL (over loopback here) that reads
//     and decodes n rows;
//   - the envelope, per secret: a GCM open of the data key under the master
//     key, an AES key schedule and GCM set-up for that data key, and a
//     second GCM open of the value (so two opens, not one), plus building
//     the additional authenticated data of each;
//   - the override rule and the map of strings the caller gets.
//
// PostgreSQL usually runs on the same machine as the benchmark and competes
// with it for CPU, and the bare loop is tiny and cache-hot: on a busy
// machine the ratio moves a lot, so record it with the machine and its load.
func BenchmarkGetDecryptedForProfile(b *testing.B) {
	db, _ := openDB(b)
	svc := newService(b, db, vault.Options{MaxSecrets: 10_000})
	ctx := context.Background()
	for _, n := range []int{10, 100, 1000} {
		user, profile := seedProfile(b, svc, n)

		var bareNs float64 // ns/op of bare-aesgcm for n values
		b.Run(fmt.Sprintf("bare-aesgcm/secrets=%d", n), func(b *testing.B) {
			bareNs = benchBare(b, n)
		})
		// The store's share: the same query without opening anything.
		b.Run(fmt.Sprintf("query-only/secrets=%d", n), func(b *testing.B) {
			for b.Loop() {
				list, err := db.SecretsForProfile(ctx, user, profile)
				if err != nil {
					b.Fatal(err)
				}
				if len(list) != n {
					b.Fatalf("query returned %d secrets, want %d", len(list), n)
				}
			}
		})
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			for b.Loop() {
				env, err := svc.GetDecryptedForProfile(ctx, user, profile)
				if err != nil {
					b.Fatal(err)
				}
				if len(env) != n {
					b.Fatalf("env holds %d names, want %d", len(env), n)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if bareNs == 0 {
				// bare-aesgcm was filtered out by -bench. testing.Benchmark
				// would deadlock inside a running benchmark, so time the
				// same loop by hand.
				bareNs = timeBare(n, time.Second)
			}
			b.ReportMetric(ns/float64(n), "ns/secret")
			b.ReportMetric(ns/bareNs, "x-bare-aesgcm")
		})
	}
}

// seedProfile creates, through the service, a user with a profile that
// receives n secrets, and a second profile that shares the `agents` ones.
func seedProfile(b *testing.B, svc *vault.Service, n int) (userID, profileID string) {
	b.Helper()
	user := mustUser(b, svc)
	prof := mustProfile(b, svc, user, "bench")
	other := mustProfile(b, svc, user, "other")
	for i := range n {
		in := vault.SecretInput{Name: fmt.Sprintf("ALL_SECRET_%04d", i), Value: value40()}
		if i%2 == 1 {
			in.Name = fmt.Sprintf("AGENT_SECRET_%04d", i)
			in.Scope = vault.ScopeAgents
			in.ProfileIDs = []string{prof.ID, other.ID}
		}
		mustSecret(b, svc, user, in)
	}
	return user, prof.ID
}

// value40 returns a realistic 40-byte token, like a GitHub PAT.
func value40() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	v := make([]byte, 40)
	rand.Read(v)
	for i := range v {
		v[i] = alphabet[int(v[i])%len(alphabet)]
	}
	copy(v, "ghp_")
	return string(v)
}

// bareOpener holds n 40-byte values sealed beforehand under one
// AES-256-GCM key, whose key schedule is done once.
type bareOpener struct {
	aead   cipher.AEAD
	nonces [][]byte
	sealed [][]byte
	buf    []byte
}

func newBareOpener(n int) *bareOpener {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	o := &bareOpener{aead: aead, nonces: make([][]byte, n), sealed: make([][]byte, n), buf: make([]byte, 0, 64)}
	for i := range n {
		o.nonces[i] = make([]byte, aead.NonceSize())
		rand.Read(o.nonces[i])
		o.sealed[i] = aead.Seal(nil, o.nonces[i], []byte(value40()), nil)
	}
	return o
}

// openAll opens every value once.
func (o *bareOpener) openAll() error {
	for i := range o.sealed {
		pt, err := o.aead.Open(o.buf[:0], o.nonces[i], o.sealed[i], nil)
		if err != nil {
			return err
		}
		if len(pt) != 40 {
			return fmt.Errorf("opened %d bytes, want 40", len(pt))
		}
	}
	return nil
}

// benchBare opens n values b.N times and returns ns per run of n opens.
func benchBare(b *testing.B, n int) float64 {
	o := newBareOpener(n)
	for b.Loop() {
		if err := o.openAll(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// timeBare is benchBare timed by hand for at least d.
func timeBare(n int, d time.Duration) float64 {
	o := newBareOpener(n)
	runs := 0
	start := time.Now()
	for time.Since(start) < d {
		for range 100 {
			if err := o.openAll(); err != nil {
				panic(err)
			}
		}
		runs += 100
	}
	return float64(time.Since(start).Nanoseconds()) / float64(runs)
}
