package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// canary is in every secret value the suite writes. No error string and no
// stored sealed byte string may contain it.
const canary = "CANARY-v4Lu3-m8Q2-never-shown"

// value returns a secret value that carries the canary.
func value(s string) string { return canary + ":" + s }

// fixture is one store with a service on it, a fixed keyring and a clock
// that moves on at every reading by a step that is not whole microseconds.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	h     Harness
	store Store
	key   []byte // the keyring's one key, for rotation tests
	keys  *seal.Keyring
	svc   *vault.Service
	ticks *atomic.Int64
}

// sub returns the fixture for a subtest: its helpers fail t, not the
// parent test, which must not be failed from another goroutine.
func (f *fixture) sub(t *testing.T) *fixture {
	c := *f
	c.t, c.ctx = t, t.Context()
	return &c
}

// base is in a zone other than UTC, with nanoseconds, so a store that
// forgets to convert or truncate is caught: the service hands it UTC
// truncated to microseconds and must get exactly that back.
var base = time.Date(2031, time.July, 9, 10, 11, 12, 123456789, time.FixedZone("UTC+5:30", 5*3600+1800))

func (f *fixture) now() time.Time {
	return base.Add(time.Duration(f.ticks.Add(1)) * (time.Millisecond + 1234*time.Nanosecond))
}

// newFixture makes a fresh harness and a service with opts on its store
// (its Now is set by the fixture).
func newFixture(t *testing.T, newHarness func(t *testing.T) Harness, opts vault.Options) *fixture {
	t.Helper()
	h := newHarness(t)
	h.check(t)
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatalf("parse generated key: %v", err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatalf("new keyring: %v", err)
	}
	f := &fixture{t: t, ctx: t.Context(), h: h, store: h.Store, key: key, keys: keys, ticks: new(atomic.Int64)}
	opts.Now = f.now
	f.svc = vault.NewService(f.store, keys, opts)
	return f
}

func (f *fixture) mustUser(name string) string {
	f.t.Helper()
	u, _, err := f.svc.CreateUser(f.ctx, name)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("create user %s: %v", name, err)
	}
	return u.ID
}

func (f *fixture) mustProfile(userID, name string) *vault.Profile {
	f.t.Helper()
	p, err := f.svc.CreateProfile(f.ctx, userID, vault.ProfileInput{Name: name, Image: "debian:bookworm"})
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("create profile %s: %v", name, err)
	}
	return p
}

// mustSecret creates an `all` secret, or an `agents` one if profiles are
// given.
func (f *fixture) mustSecret(userID, name, val string, profiles ...*vault.Profile) *vault.Secret {
	f.t.Helper()
	in := vault.SecretInput{Name: name, Value: val}
	if len(profiles) > 0 {
		in.Scope = vault.ScopeAgents
		for _, p := range profiles {
			in.ProfileIDs = append(in.ProfileIDs, p.ID)
		}
	}
	s, err := f.svc.CreateSecret(f.ctx, userID, in)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("create secret %s: %v", name, err)
	}
	checkSealed(f.t, s)
	return s
}

func (f *fixture) mustUpdateSecret(userID, id string, p vault.SecretPatch) *vault.Secret {
	f.t.Helper()
	s, err := f.svc.UpdateSecret(f.ctx, userID, id, p)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("update secret %s: %v", id, err)
	}
	checkSealed(f.t, s)
	return s
}

func (f *fixture) mustGetSecret(userID, id string) *vault.Secret {
	f.t.Helper()
	s, err := f.svc.Secret(f.ctx, userID, id)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("read secret %s: %v", id, err)
	}
	checkSealed(f.t, s)
	return s
}

func (f *fixture) mustGetProfile(userID, id string) *vault.Profile {
	f.t.Helper()
	p, err := f.svc.Profile(f.ctx, userID, id)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("read profile %s: %v", id, err)
	}
	return p
}

func (f *fixture) mustEnv(userID, profileID string) map[string]string {
	f.t.Helper()
	env, err := f.svc.GetDecryptedForProfile(f.ctx, userID, profileID)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("env of profile %s: %v", profileID, err)
	}
	return env
}

// mustAllSecrets returns every secret of the user, walking the pages.
func (f *fixture) mustAllSecrets(userID string) []*vault.Secret {
	f.t.Helper()
	var out []*vault.Secret
	cursor := ""
	for {
		page, err := f.svc.Secrets(f.ctx, userID, vault.ListOptions{Cursor: cursor, Limit: vault.MaxPageLimit})
		if err != nil {
			f.t.Fatalf("list secrets: %v", err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

func (f *fixture) mustCount(userID string) int {
	f.t.Helper()
	var n int
	err := f.store.View(f.ctx, userID, func(tx vault.Tx) (err error) {
		n, err = tx.CountSecrets(f.ctx)
		return err
	})
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("count secrets: %v", err)
	}
	return n
}

// wantEnv checks a profile's env exactly.
func (f *fixture) wantEnv(userID, profileID string, want map[string]string) {
	f.t.Helper()
	got := f.mustEnv(userID, profileID)
	if !mapsEqual(got, want) {
		f.t.Errorf("env of profile %s:\n got %s\nwant %s", profileID, envString(got), envString(want))
	}
}

// deleteUser deletes the user's row straight in the store's database, as
// an operator would, letting the schema's cascades do the rest.
func (f *fixture) deleteUser(ctx context.Context, userID string) error {
	n, err := f.h.Exec(ctx, `DELETE FROM users WHERE id = ?`, userID)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", userID, err)
	}
	if n != 1 {
		return fmt.Errorf("deleted %d users, want 1", n)
	}
	return nil
}
