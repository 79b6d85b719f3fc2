// Package storetest is the one conformance suite every vault.Store passes.
// A store's own tests call Run with a function that makes a fresh store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) vault.Store { return newMigratedStore(t) })
//	}
//
// The suite drives vault.Service on top of the store, as the API does, and
// the Store and Tx methods directly where the service cannot reach a
// behaviour (a conflict the service would have refused earlier, a swapped
// sealed row, a write inside View).
package storetest

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// Run runs the suite. newStore must return a fresh, migrated, empty store
// each time it is called, and close it with t.Cleanup. Subtests run in
// parallel, each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) vault.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T) vault.Store)
	}{
		{"Users", testUsers},
		{"SecretRoundTrip", testSecretRoundTrip},
		{"ProfileRoundTrip", testProfileRoundTrip},
		{"SecretRules", testSecretRules},
		{"SecretPatchRules", testSecretPatchRules},
		{"ProfileRules", testProfileRules},
		{"OneAllSecretPerName", testOneAllSecretPerName},
		{"AgentsSecretsOfOneName", testAgentsSecretsOfOneName},
		{"OverrideRule", testOverrideRule},
		{"OtherUsersAreInvisible", testOtherUsersAreInvisible},
		{"TxIsScopedToItsUser", testTxIsScopedToItsUser},
		{"DeletingAProfileNeverWidensScope", testDeletingAProfileNeverWidensScope},
		{"Quota", testQuota},
		{"RacingWrites", testRacingWrites},
		{"RenameAndValueChange", testRenameAndValueChange},
		{"SwappedRowDoesNotOpen", testSwappedRowDoesNotOpen},
		{"Pagination", testPagination},
		{"QueryFilter", testQueryFilter},
		{"KeyChecks", testKeyChecks},
		{"FailedWritesChangeNothing", testFailedWritesChangeNothing},
		{"StoreConflicts", testStoreConflicts},
		{"SecretsForProfile", testSecretsForProfile},
		{"ViewIsReadOnly", testViewIsReadOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

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
	store vault.Store
	key   []byte // the keyring's one key, for rotation tests
	keys  *vault.Keyring
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

// newFixture makes a store and a service with opts (its Now is set by the
// fixture).
func newFixture(t *testing.T, newStore func(t *testing.T) vault.Store, opts vault.Options) *fixture {
	t.Helper()
	key, err := vault.ParseKey(vault.GenerateKey())
	if err != nil {
		t.Fatalf("parse generated key: %v", err)
	}
	keys, err := vault.NewKeyring(key)
	if err != nil {
		t.Fatalf("new keyring: %v", err)
	}
	f := &fixture{t: t, ctx: t.Context(), store: newStore(t), key: key, keys: keys, ticks: new(atomic.Int64)}
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

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// envString shows an env with values cut to what follows the canary, so a
// failing test prints which value it got and never the canary itself.
func envString(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(k + "=" + strings.TrimPrefix(env[k], canary+":"))
	}
	b.WriteString("}")
	return b.String()
}

// wantErr checks that err is a vault error of the code and, if field is
// not "", that it concerns field and its message names it. Every error
// checked here must also be free of the canary.
func wantErr(t *testing.T, err error, code, field string) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want %s (field %q)", code, field)
		return
	}
	noCanary(t, err)
	if got := vault.ErrorCode(err); got != code {
		t.Errorf("got code %s, want %s: %v", got, code, err)
	}
	if field == "" {
		return
	}
	if got := vault.ErrorField(err); got != field {
		t.Errorf("got field %q, want %q: %v", got, field, err)
	}
	if msg := vault.ErrorMessage(err); !strings.Contains(msg, field) {
		t.Errorf("message %q does not name the field %q", msg, field)
	}
}

// noCanary fails if err's text holds a secret value.
func noCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("error text holds a secret value: %q", strings.ReplaceAll(err.Error(), canary, "<CANARY>"))
	}
}

// checkSealed fails if a stored secret holds its value in the clear.
func checkSealed(t *testing.T, s *vault.Secret) {
	t.Helper()
	if bytes.Contains(s.SealedValue, []byte(canary)) || bytes.Contains(s.SealedKey, []byte(canary)) {
		t.Errorf("secret %s holds its value unsealed", s.ID)
	}
}

// wantTime checks that a time read back is exactly the one written, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s: got %s (%s), want %s in UTC", what, got.Format(time.RFC3339Nano), got.Location(), want.Format(time.RFC3339Nano))
	}
	if got.Nanosecond()%1000 != 0 {
		t.Errorf("%s: %s is not whole microseconds", what, got.Format(time.RFC3339Nano))
	}
}

// sameSecret checks that got is want as stored, field by field. A nil and
// an empty ProfileIDs are the same.
func sameSecret(t *testing.T, got, want *vault.Secret) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("sameSecret: got %v, want %v", got, want)
	}
	checkSealed(t, got)
	type row struct {
		ID, UserID, Name, Scope, Description, MasterKeyID string
		Version                                           int
		ProfileIDs                                        string
	}
	mk := func(s *vault.Secret) row {
		return row{s.ID, s.UserID, s.Name, string(s.Scope), s.Description, s.MasterKeyID, s.Version, strings.Join(s.ProfileIDs, ",")}
	}
	if g, w := mk(got), mk(want); g != w {
		t.Errorf("secret %s:\n got %+v\nwant %+v", want.ID, g, w)
	}
	if !bytes.Equal(got.SealedValue, want.SealedValue) {
		t.Errorf("secret %s: sealed value differs from the one written", want.ID)
	}
	if !bytes.Equal(got.SealedKey, want.SealedKey) {
		t.Errorf("secret %s: sealed key differs from the one written", want.ID)
	}
	wantTime(t, "secret "+want.ID+" created_at", got.CreatedAt, want.CreatedAt)
	wantTime(t, "secret "+want.ID+" updated_at", got.UpdatedAt, want.UpdatedAt)
}

// sameProfile checks that got is want as stored, field by field.
func sameProfile(t *testing.T, got, want *vault.Profile) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("sameProfile: got %v, want %v", got, want)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name || got.Image != want.Image {
		t.Errorf("profile %s: got id=%s user=%s name=%q image=%q, want id=%s user=%s name=%q image=%q",
			want.ID, got.ID, got.UserID, got.Name, got.Image, want.ID, want.UserID, want.Name, want.Image)
	}
	if !slices.Equal(got.Command, want.Command) || (got.Command == nil) != (want.Command == nil) {
		t.Errorf("profile %s: command %#v, want %#v", want.ID, got.Command, want.Command)
	}
	if !slices.Equal(got.SetupCommands, want.SetupCommands) || (got.SetupCommands == nil) != (want.SetupCommands == nil) {
		t.Errorf("profile %s: setup_commands %#v, want %#v", want.ID, got.SetupCommands, want.SetupCommands)
	}
	if !mapsEqual(got.Env, want.Env) || (got.Env == nil) != (want.Env == nil) {
		t.Errorf("profile %s: env %#v, want %#v", want.ID, got.Env, want.Env)
	}
	wantTime(t, "profile "+want.ID+" created_at", got.CreatedAt, want.CreatedAt)
	wantTime(t, "profile "+want.ID+" updated_at", got.UpdatedAt, want.UpdatedAt)
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, x := range items {
		out[i] = id(x)
	}
	return out
}

func secretIDs(list []*vault.Secret) []string {
	return ids(list, func(s *vault.Secret) string { return s.ID })
}

func profileIDs(list []*vault.Profile) []string {
	return ids(list, func(p *vault.Profile) string { return p.ID })
}

func ptr[T any](v T) *T { return &v }
