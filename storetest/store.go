package storetest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

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
			wantErr(t, tc.try(f, user, true), vault.ECONFLICT, tc.field)
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

// try runs the write in an Update of the user's and returns the write's
// error. With commit, fn returns nil whatever the write did, so the
// store goes on to commit; Update's own result is not checked: a store may
// refuse to commit a transaction in which a statement failed.
func (c conflictWrite) try(f *fixture, user string, commit bool) error {
	var writeErr error
	_ = f.store.Update(f.ctx, user, func(tx vault.Tx) error {
		writeErr = c.write(tx)
		if commit {
			return nil
		}
		return writeErr
	})
	return writeErr
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
			return tx.UpdateSecret(f.ctx, s, true)
		}},
		{"Tx.UpdateSecret onto a granted profile", "profile_ids", func(tx vault.Tx) error {
			s, err := tx.Secret(f.ctx, x2.ID)
			if err != nil {
				return err
			}
			s.ProfileIDs, s.Description = []string{p1.ID, p2.ID, p3.ID}, "changed"
			return tx.UpdateSecret(f.ctx, s, true)
		}},
		{"Tx.UpdateSecret renaming onto a granted name", "profile_ids", func(tx vault.Tx) error {
			s, err := tx.Secret(f.ctx, bar.ID)
			if err != nil {
				return err
			}
			s.Name, s.Scope, s.ProfileIDs = "X", vault.ScopeAgents, []string{p3.ID, p1.ID}
			return tx.UpdateSecret(f.ctx, s, true)
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
			writeErr := tc.try(f, user, false)
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
