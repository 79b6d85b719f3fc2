package storetest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

func testUsers(t *testing.T, f *fixture) {
	u, token, err := f.svc.CreateUser(f.ctx, "alice")
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	userID, tokenID, err := f.svc.Authenticate(f.ctx, token)
	if err != nil || userID != u.ID {
		t.Fatalf("authenticate: got user %q, %v; want %s", userID, err, u.ID)
	}
	stored, err := f.store.Token(f.ctx, tokenID)
	if err != nil {
		t.Fatalf("read token: %v", err)
	}
	if stored.ID != tokenID || stored.UserID != u.ID || len(stored.Hash) != 32 {
		t.Errorf("token read back as id=%s user=%s hash of %d bytes", stored.ID, stored.UserID, len(stored.Hash))
	}
	wantTime(t, "token created_at", stored.CreatedAt, u.CreatedAt)

	second, err := f.svc.CreateToken(f.ctx, u.ID)
	if err != nil {
		t.Fatalf("create second token: %v", err)
	}
	if got, _, err := f.svc.Authenticate(f.ctx, second); err != nil || got != u.ID {
		t.Errorf("authenticate with second token: got %q, %v", got, err)
	}
	_, _, err = f.svc.Authenticate(f.ctx, tokenID+".not-the-secret")
	wantErr(t, err, vault.EUNAUTHORIZED, "")

	_, err = f.svc.CreateToken(f.ctx, vault.NewID(vault.PrefixUser))
	wantErr(t, err, vault.ENOTFOUND, "")
	_, err = f.store.Token(f.ctx, vault.NewID(vault.PrefixToken))
	wantErr(t, err, vault.ENOTFOUND, "")

	err = f.store.CreateUser(f.ctx, u, &vault.Token{ID: vault.NewID(vault.PrefixToken), UserID: u.ID, Name: "t", Scope: vault.TokenFull, Hash: make([]byte, 32), CreatedAt: u.CreatedAt})
	wantErr(t, err, vault.ECONFLICT, "")
}

func testSecretRoundTrip(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1 := f.mustProfile(user, "builder")

	created, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "API_KEY", Value: value("api"), Description: "the API key ✓"})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	checkSealed(t, created)
	if !strings.HasPrefix(created.ID, vault.PrefixSecret) || created.UserID != user || created.Scope != vault.ScopeAll ||
		created.Version != 1 || len(created.ProfileIDs) != 0 || created.MasterKeyID != f.keys.CurrentID() {
		t.Errorf("created secret: %+v", created)
	}
	if !created.CreatedAt.Equal(created.UpdatedAt) {
		t.Errorf("created_at %s != updated_at %s at creation", created.CreatedAt, created.UpdatedAt)
	}
	sameSecret(t, f.mustGetSecret(user, created.ID), created)

	agents := f.mustSecret(user, "DB_URL", value("db"), p1)
	if !slices.Equal(agents.ProfileIDs, []string{p1.ID}) || agents.Scope != vault.ScopeAgents {
		t.Errorf("agents secret: scope %s, profile ids %v", agents.Scope, agents.ProfileIDs)
	}
	sameSecret(t, f.mustGetSecret(user, agents.ID), agents)

	// The store, read directly, agrees with the service.
	err = f.store.View(f.ctx, user, func(tx vault.Tx) error {
		got, err := tx.Secret(f.ctx, agents.ID)
		if err != nil {
			return err
		}
		sameSecret(t, got, agents)
		named, err := tx.SecretsNamed(f.ctx, "DB_URL")
		if err != nil {
			return err
		}
		if len(named) != 1 {
			t.Fatalf("SecretsNamed(DB_URL): %d secrets, want 1", len(named))
		}
		sameSecret(t, named[0], agents)
		return nil
	})
	if err != nil {
		t.Fatalf("view: %v", err)
	}

	list := f.mustAllSecrets(user)
	if len(list) != 2 {
		t.Fatalf("list: %d secrets, want 2", len(list))
	}
	sameSecret(t, list[0], created) // API_KEY < DB_URL
	sameSecret(t, list[1], agents)
	f.wantEnv(user, p1.ID, map[string]string{"API_KEY": value("api"), "DB_URL": value("db")})

	updated := f.mustUpdateSecret(user, created.ID, vault.SecretPatch{Description: ptr("rotated monthly")})
	if updated.Description != "rotated monthly" || updated.Version != 1 || !updated.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("updated secret: description %q version %d updated_at %s", updated.Description, updated.Version, updated.UpdatedAt)
	}
	wantTime(t, "created_at after update", updated.CreatedAt, created.CreatedAt)
	sameSecret(t, f.mustGetSecret(user, created.ID), updated)

	if err := f.svc.DeleteSecret(f.ctx, user, created.ID); err != nil {
		t.Fatalf("delete secret: %v", err)
	}
	_, err = f.svc.Secret(f.ctx, user, created.ID)
	wantErr(t, err, vault.ENOTFOUND, "")
	wantErr(t, f.svc.DeleteSecret(f.ctx, user, created.ID), vault.ENOTFOUND, "")
	_, err = f.svc.UpdateSecret(f.ctx, user, created.ID, vault.SecretPatch{Description: ptr("x")})
	wantErr(t, err, vault.ENOTFOUND, "")
	f.wantEnv(user, p1.ID, map[string]string{"DB_URL": value("db")})
	if n := f.mustCount(user); n != 1 {
		t.Errorf("count after delete: %d, want 1", n)
	}
}

func testDeletingAProfileNeverWidensScope(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2")
	only := f.mustSecret(user, "ONLY_P1", value("only"), p1)
	both := f.mustSecret(user, "BOTH", value("both"), p1, p2)
	f.mustSecret(user, "EVERYONE", value("everyone"))

	if err := f.svc.DeleteProfile(f.ctx, user, p1.ID); err != nil {
		t.Fatalf("delete profile: %v", err)
	}
	_, err := f.svc.GetDecryptedForProfile(f.ctx, user, p1.ID)
	wantErr(t, err, vault.ENOTFOUND, "")
	_, err = f.svc.Profile(f.ctx, user, p1.ID)
	wantErr(t, err, vault.ENOTFOUND, "")

	orphan := f.mustGetSecret(user, only.ID)
	if orphan.Scope != vault.ScopeAgents || len(orphan.ProfileIDs) != 0 {
		t.Errorf("secret whose last profile is gone: scope %s, profile ids %v; want agents, none", orphan.Scope, orphan.ProfileIDs)
	}
	if got := f.mustGetSecret(user, both.ID); !slices.Equal(got.ProfileIDs, []string{p2.ID}) {
		t.Errorf("secret of two profiles: profile ids %v, want [%s]", got.ProfileIDs, p2.ID)
	}
	if !slices.Contains(secretIDs(f.mustAllSecrets(user)), only.ID) {
		t.Errorf("the secret that grants nobody is no longer listed")
	}

	f.wantEnv(user, p2.ID, map[string]string{"BOTH": value("both"), "EVERYONE": value("everyone")})
	p3 := f.mustProfile(user, "p3")
	f.wantEnv(user, p3.ID, map[string]string{"EVERYONE": value("everyone")})

	// It stays an agents secret of nobody through other changes...
	changed := f.mustUpdateSecret(user, only.ID, vault.SecretPatch{Description: ptr("orphaned")})
	if changed.Scope != vault.ScopeAgents || len(changed.ProfileIDs) != 0 {
		t.Errorf("after a description change: scope %s, profile ids %v", changed.Scope, changed.ProfileIDs)
	}
	f.wantEnv(user, p3.ID, map[string]string{"EVERYONE": value("everyone")})
	// ... and does not stand in the way of a new grant of its name.
	f.mustSecret(user, "ONLY_P1", value("new"), p2)
	f.wantEnv(user, p2.ID, map[string]string{"BOTH": value("both"), "EVERYONE": value("everyone"), "ONLY_P1": value("new")})
}

func testRenameAndValueChange(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2")
	s := f.mustSecret(user, "OLD_NAME", value("v1"))

	renamed := f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Name: ptr("NEW_NAME")})
	if renamed.Version != 1 {
		t.Errorf("a rename changed the version to %d", renamed.Version)
	}
	if bytes.Equal(renamed.SealedValue, s.SealedValue) {
		t.Errorf("a rename kept the sealed value bound to the old name")
	}
	sameSecret(t, f.mustGetSecret(user, s.ID), renamed)
	f.wantEnv(user, p1.ID, map[string]string{"NEW_NAME": value("v1")})

	described := f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Description: ptr("described")})
	if described.Version != 1 || !bytes.Equal(described.SealedValue, renamed.SealedValue) || !bytes.Equal(described.SealedKey, renamed.SealedKey) {
		t.Errorf("a description change touched the value: version %d", described.Version)
	}

	changed := f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value("v2"))})
	if changed.Version != 2 {
		t.Errorf("a value change gave version %d, want 2", changed.Version)
	}
	if bytes.Equal(changed.SealedKey, described.SealedKey) {
		t.Errorf("a value change kept the old data key")
	}
	sameSecret(t, f.mustGetSecret(user, s.ID), changed)
	f.wantEnv(user, p1.ID, map[string]string{"NEW_NAME": value("v2")})

	both := f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Name: ptr("THIRD_NAME"), Value: ptr(value("v3"))})
	if both.Version != 3 {
		t.Errorf("rename with a value change gave version %d, want 3", both.Version)
	}
	f.wantEnv(user, p1.ID, map[string]string{"THIRD_NAME": value("v3")})

	agents := vault.ScopeAgents
	scoped := f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Scope: &agents, ProfileIDs: []string{p1.ID}, SetProfileIDs: true})
	if scoped.Version != 3 || !slices.Equal(scoped.ProfileIDs, []string{p1.ID}) {
		t.Errorf("scope change: version %d, profile ids %v", scoped.Version, scoped.ProfileIDs)
	}
	sameSecret(t, f.mustGetSecret(user, s.ID), scoped)
	f.wantEnv(user, p1.ID, map[string]string{"THIRD_NAME": value("v3")})
	f.wantEnv(user, p2.ID, map[string]string{})

	all := vault.ScopeAll
	widened := f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Scope: &all})
	if len(widened.ProfileIDs) != 0 {
		t.Errorf("back to all: profile ids %v", widened.ProfileIDs)
	}
	sameSecret(t, f.mustGetSecret(user, s.ID), widened)
	f.wantEnv(user, p2.ID, map[string]string{"THIRD_NAME": value("v3")})

	ds, err := f.svc.ProfileSecrets(f.ctx, user, p2.ID)
	if err != nil || len(ds) != 1 || ds[0].Version != 3 || ds[0].SecretID != s.ID {
		t.Errorf("profile secrets after changes: %+v, %v", ds, err)
	}
}

// swappedRowTests each change BETA's stored row under its seal in one way
// (from ALPHA's), each on a store of its own.
var swappedRowTests = []test{
	{name: "value and key", fn: swappedRow(func(dst, src *vault.Secret) {
		dst.SealedValue, dst.SealedKey, dst.MasterKeyID = src.SealedValue, src.SealedKey, src.MasterKeyID
	})},
	{name: "value only", fn: swappedRow(func(dst, src *vault.Secret) { dst.SealedValue = src.SealedValue })},
	{name: "key only", fn: swappedRow(func(dst, src *vault.Secret) { dst.SealedKey = src.SealedKey })},
	{name: "row renamed under the seal", fn: swappedRow(func(dst, _ *vault.Secret) { dst.Name = "RENAMED" })},
}

// swappedRow returns a test that changes a stored row by swap and checks
// that the profile's secrets no longer open, naming the row and showing
// no value.
func swappedRow(swap func(dst, src *vault.Secret)) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		p := f.mustProfile(user, "p")
		a := f.mustSecret(user, "ALPHA", value("alpha"))
		b := f.mustSecret(user, "BETA", value("beta"))
		f.mustSecret(user, "GAMMA", value("gamma"))

		err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
			src, err := tx.Secret(f.ctx, a.ID)
			if err != nil {
				return err
			}
			dst, err := tx.Secret(f.ctx, b.ID)
			if err != nil {
				return err
			}
			swap(dst, src)
			return tx.UpdateSecret(f.ctx, dst, false)
		})
		if err != nil {
			t.Fatalf("swap rows: %v", err)
		}

		env, err := f.svc.GetDecryptedForProfile(f.ctx, user, p.ID)
		if !errors.Is(err, vault.ErrDecrypt) {
			t.Fatalf("env with a swapped row: got %v, want an error wrapping ErrDecrypt", err)
		}
		noCanary(t, err)
		if !strings.Contains(err.Error(), b.ID) {
			t.Errorf("decrypt error %q does not name the secret %s", err, b.ID)
		}
		if env != nil {
			t.Errorf("a failed decrypt returned a partial env of %d names", len(env))
		}
		released, err := f.svc.GetDecryptedForProfileWithSources(f.ctx, user, p.ID)
		if err == nil || released != nil {
			t.Errorf("GetDecryptedForProfileWithSources with a swapped row: %d released, err %v", len(released), err)
		}
		// The names are still there to be seen, without values.
		names, err := f.svc.ProfileSecrets(f.ctx, user, p.ID)
		if err != nil || len(names) != 3 {
			t.Errorf("profile secrets with a swapped row: %d, %v", len(names), err)
		}
	}
}
