package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

func testKeyChecks(t *testing.T, f *fixture) {
	checks, err := f.store.KeyChecks(f.ctx)
	if err != nil || len(checks) != 0 {
		t.Fatalf("fresh store: %d key checks, %v; want none", len(checks), err)
	}
	counts, err := f.store.MasterKeyCounts(f.ctx)
	if err != nil || len(counts) != 0 {
		t.Fatalf("fresh store: master key counts %v, %v; want none", counts, err)
	}

	if err := f.svc.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys on a fresh store: %v", err)
	}
	checks, err = f.store.KeyChecks(f.ctx)
	if err != nil || len(checks) != 1 || checks[0].KeyID != f.keys.CurrentID() || len(checks[0].Sealed) == 0 {
		t.Fatalf("after the first check: %+v, %v; want one for key %s", checks, err, f.keys.CurrentID())
	}
	first := checks[0]
	if err := f.svc.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys again: %v", err)
	}
	checks, err = f.store.KeyChecks(f.ctx)
	if err != nil || len(checks) != 1 || !bytes.Equal(checks[0].Sealed, first.Sealed) {
		t.Fatalf("a second check changed the stored checks: %+v, %v", checks, err)
	}

	user := f.mustUser("alice")
	for _, name := range []string{"ONE", "TWO", "THREE"} {
		f.mustSecret(user, name, value(name))
	}
	oldID := f.keys.CurrentID()
	counts, err = f.store.MasterKeyCounts(f.ctx)
	if err != nil || len(counts) != 1 || counts[oldID] != 3 {
		t.Fatalf("master key counts %v, %v; want %s: 3", counts, err, oldID)
	}

	newKey := mustKey(t)
	wrong := mustKeyring(t, newKey)
	err = vault.NewService(f.store, wrong, vault.Options{}).CheckKeys(f.ctx)
	if err == nil {
		t.Fatalf("a keyring with another key passed the check")
	}
	if msg := err.Error(); !strings.Contains(msg, wrong.CurrentID()) || !strings.Contains(msg, oldID) {
		t.Errorf("wrong key error %q does not name both key ids %s and %s", msg, wrong.CurrentID(), oldID)
	}
	if checks, _ := f.store.KeyChecks(f.ctx); len(checks) != 1 {
		t.Errorf("a failed check stored a key check: %d checks", len(checks))
	}

	// Rotation: the new key seals, the old one still opens.
	rotatedKeys := mustKeyring(t, newKey, f.key)
	rotated := vault.NewService(f.store, rotatedKeys, vault.Options{Now: f.now})
	if err := rotated.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys after rotation: %v", err)
	}
	checks, err = f.store.KeyChecks(f.ctx)
	if err != nil || !slices.Equal(ids(checks, func(c vault.KeyCheck) string { return c.KeyID }), slices.Sorted(slices.Values([]string{oldID, rotatedKeys.CurrentID()}))) {
		t.Errorf("after rotation: key checks %+v, %v", ids(checks, func(c vault.KeyCheck) string { return c.KeyID }), err)
	}
	if _, err := rotated.CreateSecret(f.ctx, user, vault.SecretInput{Name: "FOUR", Value: value("4")}); err != nil {
		t.Fatalf("create under the new key: %v", err)
	}
	counts, err = f.store.MasterKeyCounts(f.ctx)
	if err != nil || len(counts) != 2 || counts[oldID] != 3 || counts[rotatedKeys.CurrentID()] != 1 {
		t.Errorf("master key counts after rotation %v, %v", counts, err)
	}
	p := f.mustProfile(user, "p")
	env, err := rotated.GetDecryptedForProfile(f.ctx, user, p.ID)
	if err != nil || len(env) != 4 || env["ONE"] != value("ONE") || env["FOUR"] != value("4") {
		t.Errorf("env under the rotated keyring: %s, %v", envString(env), err)
	}
	// The old keyring alone no longer opens everything, and says which key
	// it lacks.
	err = f.svc.CheckKeys(f.ctx)
	if err == nil || !strings.Contains(err.Error(), rotatedKeys.CurrentID()) {
		t.Errorf("old keyring after rotation: %v; want an error naming %s", err, rotatedKeys.CurrentID())
	}

	f.wantPutKeyCheckReplaces()

}

// wantPutKeyCheckReplaces checks that PutKeyCheck replaces the check of
// the same key id; the store holds two other checks.
func (f *fixture) wantPutKeyCheckReplaces() {
	t := f.t
	t.Helper()
	for _, sealed := range [][]byte{{1, 2, 3}, {4, 5}} {
		if err := f.store.PutKeyCheck(f.ctx, vault.KeyCheck{KeyID: "0badc0de", Sealed: sealed}); err != nil {
			t.Fatalf("put key check: %v", err)
		}
	}
	checks, err := f.store.KeyChecks(f.ctx)
	if err != nil {
		t.Fatalf("key checks: %v", err)
	}
	n := 0
	for _, c := range checks {
		if c.KeyID == "0badc0de" {
			n++
			if !bytes.Equal(c.Sealed, []byte{4, 5}) {
				t.Errorf("replaced key check holds %v, want [4 5]", c.Sealed)
			}
		}
	}
	if n != 1 || len(checks) != 3 {
		t.Errorf("after two puts of one key id: %d checks of it, %d in all; want 1, 3", n, len(checks))
	}
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatalf("parse generated key: %v", err)
	}
	return k
}

func mustKeyring(t *testing.T, current []byte, previous ...[]byte) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(current, previous...)
	if err != nil {
		t.Fatalf("new keyring: %v", err)
	}
	return k
}

func testFailedWritesChangeNothing(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2, p3 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2"), f.mustProfile(user, "p3")
	foo := f.mustSecret(user, "FOO", value("foo"))
	bar := f.mustSecret(user, "BAR", value("bar"))
	x1 := f.mustSecret(user, "X", value("x1"), p1)
	x2 := f.mustSecret(user, "X", value("x2"), p2)
	envBefore := map[string]map[string]string{}
	for _, p := range []*vault.Profile{p1, p2, p3} {
		envBefore[p.ID] = f.mustEnv(user, p.ID)
	}
	checkUnchanged := func(t *testing.T) {
		t.Helper()
		f := f.sub(t)
		for _, s := range []*vault.Secret{foo, bar, x1, x2} {
			sameSecret(t, f.mustGetSecret(user, s.ID), s)
		}
		for _, p := range []*vault.Profile{p1, p2, p3} {
			f.wantEnv(user, p.ID, envBefore[p.ID])
		}
		if n := f.mustCount(user); n != 4 {
			t.Errorf("count %d, want 4", n)
		}
	}

	t.Run("service rename onto a taken name", func(t *testing.T) {
		_, err := f.svc.UpdateSecret(f.ctx, user, bar.ID, vault.SecretPatch{Name: ptr("FOO"), Value: ptr(value("new")), Description: ptr("d")})
		wantErr(t, err, vault.ECONFLICT, "name")
		checkUnchanged(t)
	})
	t.Run("service regrant onto a granted profile", func(t *testing.T) {
		_, err := f.svc.UpdateSecret(f.ctx, user, x2.ID, vault.SecretPatch{ProfileIDs: []string{p2.ID, p1.ID}, SetProfileIDs: true})
		wantErr(t, err, vault.ECONFLICT, "profile_ids")
		checkUnchanged(t)
	})

	// Below, the service's checks are bypassed: the store's own unique
	// rules refuse the write, and the method leaves no part of it behind
	// even when fn goes on to commit.
	direct := directConflicts(f, foo, bar, x1, x2, []*vault.Profile{p1, p2, p3})
	for _, tc := range direct {
		t.Run(tc.name, func(t *testing.T) {
			var writeErr error
			// Update's own result is not checked: a store may refuse to
			// commit a transaction in which a statement failed.
			_ = f.store.Update(f.ctx, user, func(tx vault.Tx) error {
				writeErr = tc.write(tx)
				return nil
			})
			wantErr(t, writeErr, vault.ECONFLICT, tc.field)
			checkUnchanged(t)
		})
	}

	t.Run("fn error rolls back earlier writes", func(t *testing.T) {
		errBoom := errors.New("boom")
		now := f.now().UTC().Truncate(time.Microsecond)
		p := &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: user, Name: "rolled back", Image: "alpine",
			Command: []string{}, SetupCommands: []string{}, Env: map[string]string{}, CreatedAt: now, UpdatedAt: now}
		err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
			if err := tx.CreateProfile(f.ctx, p); err != nil {
				return err
			}
			if err := tx.DeleteSecret(f.ctx, foo.ID); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("Update returned %v, want fn's error", err)
		}
		_, err = f.svc.Profile(f.ctx, user, p.ID)
		wantErr(t, err, vault.ENOTFOUND, "")
		checkUnchanged(t)
	})
}

// conflictWrite is a write straight on a Tx that the store's own unique
// rules refuse, with the field its ECONFLICT names.
type conflictWrite struct {
	name  string
	field string
	write func(tx vault.Tx) error
}

// directConflicts are the writes testFailedWritesChangeNothing makes
// bypassing the service's checks: foo and bar are all secrets, x1 and x2
// agents secrets of one name granted to the first and second of p.
func directConflicts(f *fixture, foo, bar, x1, x2 *vault.Secret, p []*vault.Profile) []conflictWrite {
	p1, p2, p3 := p[0], p[1], p[2]
	return []conflictWrite{
		{"Tx.UpdateSecret onto a taken all name", "name", func(tx vault.Tx) error {
			s, err := tx.Secret(f.ctx, bar.ID)
			if err != nil {
				return err
			}
			s.Name, s.Description, s.Version = "FOO", "changed", 9
			return tx.UpdateSecret(f.ctx, s)
		}},
		{"Tx.UpdateSecret onto a granted profile", "profile_ids", func(tx vault.Tx) error {
			s, err := tx.Secret(f.ctx, x2.ID)
			if err != nil {
				return err
			}
			s.ProfileIDs, s.Description = []string{p1.ID, p2.ID, p3.ID}, "changed"
			return tx.UpdateSecret(f.ctx, s)
		}},
		{"Tx.UpdateSecret renaming onto a granted name", "profile_ids", func(tx vault.Tx) error {
			s, err := tx.Secret(f.ctx, bar.ID)
			if err != nil {
				return err
			}
			s.Name, s.Scope, s.ProfileIDs = "X", vault.ScopeAgents, []string{p3.ID, p1.ID}
			return tx.UpdateSecret(f.ctx, s)
		}},
		{"Tx.CreateSecret of a taken all name", "name", func(tx vault.Tx) error {
			s := *foo
			s.ID = vault.NewID(vault.PrefixSecret)
			return tx.CreateSecret(f.ctx, &s)
		}},
		{"Tx.CreateSecret whose last grant collides", "profile_ids", func(tx vault.Tx) error {
			s := *x1
			s.ID = vault.NewID(vault.PrefixSecret)
			s.ProfileIDs = []string{p3.ID, p2.ID}
			slices.Sort(s.ProfileIDs)
			return tx.CreateSecret(f.ctx, &s)
		}},
	}
}

func testStoreConflicts(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	const profileName = "Profile-Name-Q7"
	p := f.mustProfile(user, profileName)
	q := f.mustProfile(user, "other")
	const secretName = "SECRET_NAME_Q7"
	s := f.mustSecret(user, secretName, value("v"))
	g := f.mustSecret(user, "GRANTED_Q7", value("g"), p)

	cases := []conflictWrite{
		{"CreateProfile of a taken name", "name", func(tx vault.Tx) error {
			c := *p
			c.ID = vault.NewID(vault.PrefixProfile)
			return tx.CreateProfile(f.ctx, &c)
		}},
		{"UpdateProfile onto a taken name", "name", func(tx vault.Tx) error {
			c := *q
			c.Name = profileName
			return tx.UpdateProfile(f.ctx, &c)
		}},
		{"CreateSecret of a taken all name", "name", func(tx vault.Tx) error {
			c := *s
			c.ID = vault.NewID(vault.PrefixSecret)
			return tx.CreateSecret(f.ctx, &c)
		}},
		{"CreateSecret granting a name twice", "profile_ids", func(tx vault.Tx) error {
			c := *g
			c.ID = vault.NewID(vault.PrefixSecret)
			return tx.CreateSecret(f.ctx, &c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var writeErr error
			_ = f.store.Update(f.ctx, user, func(tx vault.Tx) error {
				writeErr = tc.write(tx)
				return writeErr
			})
			wantErr(t, writeErr, vault.ECONFLICT, tc.field)
			// The message is for the client: it names the field, not the
			// values in the row.
			msg := vault.ErrorMessage(writeErr)
			for _, v := range []string{profileName, secretName, "GRANTED_Q7", user, p.ID, s.ID, g.ID} {
				if strings.Contains(msg, v) {
					t.Errorf("conflict message %q holds the value %q", msg, v)
				}
			}
		})
	}
	sameProfile(t, f.mustGetProfile(user, q.ID), q)
	if n := f.mustCount(user); n != 2 {
		t.Errorf("count %d, want 2", n)
	}
}

func testSecretsForProfile(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2, p3 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2"), f.mustProfile(user, "p3")
	a := f.mustSecret(user, "A", value("a"))
	b1 := f.mustSecret(user, "B", value("b1"), p1)
	b2 := f.mustSecret(user, "B", value("b2"), p2)
	c := f.mustSecret(user, "C", value("c"), p1, p2)
	orphan := f.mustSecret(user, "D", value("d"), p3)
	if err := f.svc.DeleteProfile(f.ctx, user, p3.ID); err != nil {
		t.Fatalf("delete profile: %v", err)
	}
	p4 := f.mustProfile(user, "p4")

	for _, tc := range []struct {
		profile *vault.Profile
		want    []*vault.Secret
	}{
		{p1, []*vault.Secret{a, b1, c}},
		{p2, []*vault.Secret{a, b2, c}},
		{p4, []*vault.Secret{a}},
	} {
		got, err := f.store.SecretsForProfile(f.ctx, user, tc.profile.ID)
		if err != nil {
			t.Fatalf("secrets for %s: %v", tc.profile.Name, err)
		}
		if g, w := slices.Sorted(slices.Values(secretIDs(got))), slices.Sorted(slices.Values(secretIDs(tc.want))); !slices.Equal(g, w) {
			t.Errorf("secrets for %s: got %v, want %v", tc.profile.Name, g, w)
			continue
		}
		for _, s := range got {
			want := tc.want[slices.IndexFunc(tc.want, func(w *vault.Secret) bool { return w.ID == s.ID })]
			if s.Name != want.Name || s.Scope != want.Scope || s.Version != want.Version || s.UserID != user ||
				!bytes.Equal(s.SealedValue, want.SealedValue) || !bytes.Equal(s.SealedKey, want.SealedKey) || s.MasterKeyID != want.MasterKeyID {
				t.Errorf("secret %s for %s differs from the one stored", s.ID, tc.profile.Name)
			}
			if s.Scope == vault.ScopeAgents && !slices.Contains(s.ProfileIDs, tc.profile.ID) {
				t.Errorf("secret %s for %s: profile ids %v lack the profile", s.ID, tc.profile.Name, s.ProfileIDs)
			}
			if slices.Contains(secretIDs(got), orphan.ID) {
				t.Errorf("the secret of a deleted profile reached %s", tc.profile.Name)
			}
		}
	}

	other := f.mustUser("bob")
	lonely := f.mustProfile(other, "lonely")
	got, err := f.store.SecretsForProfile(f.ctx, other, lonely.ID)
	if err != nil || len(got) != 0 {
		t.Errorf("a profile with no secrets: %d, %v; want none and no error", len(got), err)
	}
	for _, tc := range []struct{ name, user, profile string }{
		{"unknown profile", user, vault.NewID(vault.PrefixProfile)},
		{"deleted profile", user, p3.ID},
		{"another user's profile", other, p1.ID},
		{"own profile asked for another user", user, lonely.ID},
		{"empty id", user, ""},
	} {
		_, err := f.store.SecretsForProfile(f.ctx, tc.user, tc.profile)
		t.Run(tc.name, func(t *testing.T) { wantErr(t, err, vault.ENOTFOUND, "") })
	}
}

func testViewIsReadOnly(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	s := f.mustSecret(user, "KEPT", value("kept"))
	now := f.now().UTC().Truncate(time.Microsecond)
	p := &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: user, Name: "written in a view", Image: "alpine",
		Command: []string{}, SetupCommands: []string{}, Env: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	var createErr, deleteErr error
	_ = f.store.View(f.ctx, user, func(tx vault.Tx) error {
		createErr = tx.CreateProfile(f.ctx, p)
		deleteErr = tx.DeleteSecret(f.ctx, s.ID)
		return nil
	})
	if createErr == nil || deleteErr == nil {
		t.Errorf("writes inside View: create %v, delete %v; want both refused", createErr, deleteErr)
	}
	_, err := f.svc.Profile(f.ctx, user, p.ID)
	wantErr(t, err, vault.ENOTFOUND, "")
	sameSecret(t, f.mustGetSecret(user, s.ID), s)
}

// racers is how many goroutines a racing test releases at once.
const racers = 8

// race runs fn in racers goroutines released at once and returns their
// errors.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// tally checks the racers' errors: ok of them nil, the rest ECONFLICT.
func tally(t *testing.T, errs []error, ok int) {
	t.Helper()
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
			continue
		}
		wantErr(t, err, vault.ECONFLICT, "")
	}
	if n != ok {
		t.Errorf("%d of %d racers succeeded, want %d", n, racers, ok)
	}
}

// racingQuota is the quota of the racing quota test.
const racingQuota = 5

// racingWritesTests race writes that only one (or a quota's worth) may
// win, each on a store of its own.
var racingWritesTests = []test{
	{name: "same all name", fn: func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		p := f.mustProfile(user, "p")
		var mu sync.Mutex
		winner := ""
		errs := race(func(i int) error {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "RACE", Value: value(fmt.Sprint(i))})
			if err == nil {
				mu.Lock()
				winner = value(fmt.Sprint(i))
				mu.Unlock()
			}
			return err
		})
		tally(t, errs, 1)
		if n := f.mustCount(user); n != 1 {
			t.Errorf("%d secrets after the race, want 1", n)
		}
		f.wantEnv(user, p.ID, map[string]string{"RACE": winner})
	}},
	{name: "same agents name on one profile", fn: func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		p := f.mustProfile(user, "p")
		errs := race(func(i int) error {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "RACE", Value: value(fmt.Sprint(i)), Scope: vault.ScopeAgents, ProfileIDs: []string{p.ID}})
			return err
		})
		tally(t, errs, 1)
		if n := f.mustCount(user); n != 1 {
			t.Errorf("%d secrets after the race, want 1", n)
		}
	}},
	// No unique index guards the limit: only serialized writes do.
	{name: "quota", opts: vault.Options{MaxSecrets: racingQuota}, fn: func(t *testing.T, f *fixture) {
		const limit = racingQuota
		user := f.mustUser("alice")
		errs := race(func(i int) error {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: fmt.Sprintf("RACE_%d", i), Value: value(fmt.Sprint(i))})
			return err
		})
		tally(t, errs, limit)
		if n := f.mustCount(user); n != limit {
			t.Errorf("%d secrets after the race, want %d", n, limit)
		}
	}},
	{name: "renames onto one name", fn: func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		var secrets []*vault.Secret
		for i := range racers {
			secrets = append(secrets, f.mustSecret(user, fmt.Sprintf("FROM_%d", i), value(fmt.Sprint(i))))
		}
		errs := race(func(i int) error {
			_, err := f.svc.UpdateSecret(f.ctx, user, secrets[i].ID, vault.SecretPatch{Name: ptr("TO")})
			return err
		})
		tally(t, errs, 1)
		err := f.store.View(f.ctx, user, func(tx vault.Tx) error {
			named, err := tx.SecretsNamed(f.ctx, "TO")
			if len(named) != 1 {
				t.Errorf("%d secrets named TO, want 1", len(named))
			}
			return err
		})
		if err != nil {
			t.Fatalf("view: %v", err)
		}
	}},
}
