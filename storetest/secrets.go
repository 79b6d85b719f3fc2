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

	err = f.store.CreateUser(f.ctx, u, &vault.Token{ID: vault.NewID(vault.PrefixToken), UserID: u.ID, Hash: make([]byte, 32), CreatedAt: u.CreatedAt})
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

func testSecretRules(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	other := f.mustUser("bob")
	p1 := f.mustProfile(user, "p1")
	p2 := f.mustProfile(user, "p2")
	theirs := f.mustProfile(other, "theirs")
	unknown := vault.NewID(vault.PrefixProfile)
	agents := vault.ScopeAgents

	refused := refusedSecrets(p1, p2, theirs, unknown)
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := f.svc.CreateSecret(f.ctx, user, tc.in)
			wantErr(t, err, tc.code, tc.field)
		})
	}
	// Nothing was written, and no name was upper-cased into existence.
	if n := f.mustCount(user); n != 0 {
		t.Fatalf("after refused creates the user holds %d secrets, want 0", n)
	}

	t.Run("unknown and another user's profile get the same answer", func(t *testing.T) {
		_, errUnknown := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{unknown}})
		_, errTheirs := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{theirs.ID}})
		a := strings.ReplaceAll(vault.ErrorMessage(errUnknown), unknown, "<id>")
		b := strings.ReplaceAll(vault.ErrorMessage(errTheirs), theirs.ID, "<id>")
		if a != b || vault.ErrorCode(errUnknown) != vault.ErrorCode(errTheirs) {
			t.Errorf("unknown profile: %s %q; another user's: %s %q", vault.ErrorCode(errUnknown), a, vault.ErrorCode(errTheirs), b)
		}
	})

	accepted := []struct {
		name string
		in   vault.SecretInput
	}{
		{"name of 256 characters", vault.SecretInput{Name: strings.Repeat("N", 256), Value: value("v")}},
		{"underscore name", vault.SecretInput{Name: "_", Value: value("v")}},
		{"name with digits", vault.SecretInput{Name: "_9A_1", Value: value("v")}},
		{"value of exactly 64 KiB", vault.SecretInput{Name: "BIG", Value: value(strings.Repeat("x", vault.MaxValueLen-len(value(""))))}},
		{"value with newlines and unicode", vault.SecretInput{Name: "PEM", Value: value("-----BEGIN-----\nzäöü ✓\n-----END-----\n")}},
		{"empty scope means all", vault.SecretInput{Name: "DEFAULT_SCOPE", Value: value("v"), Scope: ""}},
		{"agents with profiles", vault.SecretInput{Name: "GRANTED", Value: value("v"), Scope: agents, ProfileIDs: []string{p2.ID, p1.ID}}},
		{"description of 1000 bytes", vault.SecretInput{Name: "DESCRIBED", Value: value("v"), Description: strings.Repeat("d", 1000)}},
	}
	for _, tc := range accepted {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			f := f.sub(t)
			s, err := f.svc.CreateSecret(f.ctx, user, tc.in)
			if err != nil {
				noCanary(t, err)
				t.Fatalf("create: %v", err)
			}
			got := f.mustGetSecret(user, s.ID)
			sameSecret(t, got, s)
			if got.Name != tc.in.Name {
				t.Errorf("name read back as %q, want %q", got.Name, tc.in.Name)
			}
			if tc.in.Scope == "" && got.Scope != vault.ScopeAll {
				t.Errorf("empty scope read back as %q, want all", got.Scope)
			}
			if tc.in.Scope == agents {
				want := slices.Sorted(slices.Values(tc.in.ProfileIDs))
				if !slices.Equal(got.ProfileIDs, want) {
					t.Errorf("profile ids read back as %v, want %v (sorted)", got.ProfileIDs, want)
				}
			}
		})
	}
	env := f.mustEnv(user, p1.ID)
	if want := value(strings.Repeat("x", vault.MaxValueLen-len(value("")))); env["BIG"] != want {
		t.Errorf("64 KiB value read back as %d bytes", len(env["BIG"]))
	}
	if env["PEM"] != value("-----BEGIN-----\nzäöü ✓\n-----END-----\n") {
		t.Errorf("multi-line value did not round-trip")
	}
}

// refusedSecret is an input CreateSecret refuses, with the code and field
// of its error.
type refusedSecret struct {
	name  string
	in    vault.SecretInput
	code  string
	field string
}

// refusedSecrets are the inputs testSecretRules expects refused; p1 and p2
// are the user's profiles, theirs another user's, unknown an id never used.
func refusedSecrets(p1, p2, theirs *vault.Profile, unknown string) []refusedSecret {
	agents := vault.ScopeAgents
	return []refusedSecret{
		{"empty name", vault.SecretInput{Name: "", Value: value("v")}, vault.EINVALID, "name"},
		{"lower-case name", vault.SecretInput{Name: "api_key", Value: value("v")}, vault.EINVALID, "name"},
		{"mixed-case name", vault.SecretInput{Name: "Api_Key", Value: value("v")}, vault.EINVALID, "name"},
		{"name starting with a digit", vault.SecretInput{Name: "1API", Value: value("v")}, vault.EINVALID, "name"},
		{"name with a dash", vault.SecretInput{Name: "API-KEY", Value: value("v")}, vault.EINVALID, "name"},
		{"name with a space", vault.SecretInput{Name: "API KEY", Value: value("v")}, vault.EINVALID, "name"},
		{"name with a dot", vault.SecretInput{Name: "API.KEY", Value: value("v")}, vault.EINVALID, "name"},
		{"non-ASCII name", vault.SecretInput{Name: "ÄPI", Value: value("v")}, vault.EINVALID, "name"},
		{"name with a newline", vault.SecretInput{Name: "API\nKEY", Value: value("v")}, vault.EINVALID, "name"},
		{"name of 257 characters", vault.SecretInput{Name: strings.Repeat("A", 257), Value: value("v")}, vault.EINVALID, "name"},
		{"empty value", vault.SecretInput{Name: "API", Value: ""}, vault.EINVALID, "value"},
		{"value over 64 KiB", vault.SecretInput{Name: "API", Value: value(strings.Repeat("x", vault.MaxValueLen))}, vault.EINVALID, "value"},
		{"value with NUL", vault.SecretInput{Name: "API", Value: value("a\x00b")}, vault.EINVALID, "value"},
		{"unknown scope", vault.SecretInput{Name: "API", Value: value("v"), Scope: "some"}, vault.EINVALID, "scope"},
		{"scope in upper case", vault.SecretInput{Name: "API", Value: value("v"), Scope: "ALL"}, vault.EINVALID, "scope"},
		{"all with profile_ids", vault.SecretInput{Name: "API", Value: value("v"), ProfileIDs: []string{p1.ID}}, vault.EINVALID, "profile_ids"},
		{"explicit all with profile_ids", vault.SecretInput{Name: "API", Value: value("v"), Scope: vault.ScopeAll, ProfileIDs: []string{p1.ID}}, vault.EINVALID, "profile_ids"},
		{"agents without profile_ids", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents}, vault.EINVALID, "profile_ids"},
		{"agents with empty profile_ids", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{}}, vault.EINVALID, "profile_ids"},
		{"agents with a duplicate id", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{p1.ID, p2.ID, p1.ID}}, vault.EINVALID, "profile_ids"},
		{"agents with an unknown profile", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{unknown}}, vault.EINVALID, "profile_ids"},
		{"agents with another user's profile", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{theirs.ID}}, vault.EINVALID, "profile_ids"},
		{"agents with one good and one unknown profile", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{p1.ID, unknown}}, vault.EINVALID, "profile_ids"},
		{"agents with a malformed id", vault.SecretInput{Name: "API", Value: value("v"), Scope: agents, ProfileIDs: []string{"'; DROP TABLE secrets; --"}}, vault.EINVALID, "profile_ids"},
		{"description over 1000 bytes", vault.SecretInput{Name: "API", Value: value("v"), Description: strings.Repeat("d", 1001)}, vault.EINVALID, "description"},
		{"description with NUL", vault.SecretInput{Name: "API", Value: value("v"), Description: "a\x00b"}, vault.EINVALID, "description"},
	}
}

func testSecretPatchRules(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	other := f.mustUser("bob")
	p1 := f.mustProfile(user, "p1")
	theirs := f.mustProfile(other, "theirs")
	s := f.mustSecret(user, "API_KEY", value("v"))
	agents, all := vault.ScopeAgents, vault.ScopeAll

	cases := []struct {
		name  string
		patch vault.SecretPatch
		field string
	}{
		{"empty name", vault.SecretPatch{Name: ptr("")}, "name"},
		{"lower-case name", vault.SecretPatch{Name: ptr("api_key")}, "name"},
		{"name of 257 characters", vault.SecretPatch{Name: ptr(strings.Repeat("A", 257))}, "name"},
		{"empty value", vault.SecretPatch{Value: ptr("")}, "value"},
		{"value with NUL", vault.SecretPatch{Value: ptr(value("\x00"))}, "value"},
		{"value over 64 KiB", vault.SecretPatch{Value: ptr(value(strings.Repeat("x", vault.MaxValueLen)))}, "value"},
		{"unknown scope", vault.SecretPatch{Scope: ptr(vault.Scope("everyone"))}, "scope"},
		{"agents without profile_ids", vault.SecretPatch{Scope: &agents}, "profile_ids"},
		{"agents with a duplicate id", vault.SecretPatch{Scope: &agents, ProfileIDs: []string{p1.ID, p1.ID}, SetProfileIDs: true}, "profile_ids"},
		{"agents with another user's profile", vault.SecretPatch{Scope: &agents, ProfileIDs: []string{theirs.ID}, SetProfileIDs: true}, "profile_ids"},
		{"profile_ids on an all secret", vault.SecretPatch{ProfileIDs: []string{p1.ID}, SetProfileIDs: true}, "profile_ids"},
		{"all with profile_ids", vault.SecretPatch{Scope: &all, ProfileIDs: []string{p1.ID}, SetProfileIDs: true}, "profile_ids"},
		{"description over 1000 bytes", vault.SecretPatch{Description: ptr(strings.Repeat("d", 1001))}, "description"},
		{"a good name with a bad value", vault.SecretPatch{Name: ptr("GOOD_NAME"), Value: ptr("")}, "value"},
	}
	for _, tc := range cases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			f := f.sub(t)
			_, err := f.svc.UpdateSecret(f.ctx, user, s.ID, tc.patch)
			wantErr(t, err, vault.EINVALID, tc.field)
			sameSecret(t, f.mustGetSecret(user, s.ID), s)
		})
	}
	f.wantEnv(user, p1.ID, map[string]string{"API_KEY": value("v")})
}

func testOneAllSecretPerName(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1 := f.mustProfile(user, "p1")
	first := f.mustSecret(user, "TOKEN", value("first"))

	_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "TOKEN", Value: value("second")})
	wantErr(t, err, vault.ECONFLICT, "name")
	if !strings.Contains(vault.ErrorMessage(err), first.ID) {
		t.Errorf("conflict message %q does not name the secret holding the name, %s", vault.ErrorMessage(err), first.ID)
	}

	// An agents secret of the name may live beside it.
	override := f.mustSecret(user, "TOKEN", value("override"), p1)

	other := f.mustSecret(user, "OTHER", value("other"))
	_, err = f.svc.UpdateSecret(f.ctx, user, other.ID, vault.SecretPatch{Name: ptr("TOKEN")})
	wantErr(t, err, vault.ECONFLICT, "name")
	if !strings.Contains(vault.ErrorMessage(err), first.ID) {
		t.Errorf("rename conflict message %q does not name %s", vault.ErrorMessage(err), first.ID)
	}
	sameSecret(t, f.mustGetSecret(user, other.ID), other)

	all := vault.ScopeAll
	_, err = f.svc.UpdateSecret(f.ctx, user, override.ID, vault.SecretPatch{Scope: &all})
	wantErr(t, err, vault.ECONFLICT, "name")
	if !strings.Contains(vault.ErrorMessage(err), first.ID) {
		t.Errorf("scope conflict message %q does not name %s", vault.ErrorMessage(err), first.ID)
	}
	sameSecret(t, f.mustGetSecret(user, override.ID), override)

	// Once the holder is gone the name is free again.
	if err := f.svc.DeleteSecret(f.ctx, user, first.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	f.mustSecret(user, "TOKEN", value("third"))

	// Names are per user.
	f.mustSecret(f.mustUser("bob"), "TOKEN", value("bob's"))
}

func testAgentsSecretsOfOneName(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2, p3, p4 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2"), f.mustProfile(user, "p3"), f.mustProfile(user, "p4")

	s1 := f.mustSecret(user, "X", value("x1"), p1)
	s2 := f.mustSecret(user, "X", value("x2"), p2)

	_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "X", Value: value("x3"), Scope: vault.ScopeAgents, ProfileIDs: []string{p3.ID, p2.ID}})
	wantErr(t, err, vault.ECONFLICT, "profile_ids")
	if !strings.Contains(vault.ErrorMessage(err), s2.ID) {
		t.Errorf("conflict message %q does not name %s", vault.ErrorMessage(err), s2.ID)
	}

	s3 := f.mustSecret(user, "X", value("x3"), p3)

	_, err = f.svc.UpdateSecret(f.ctx, user, s1.ID, vault.SecretPatch{ProfileIDs: []string{p1.ID, p3.ID}, SetProfileIDs: true})
	wantErr(t, err, vault.ECONFLICT, "profile_ids")
	if !strings.Contains(vault.ErrorMessage(err), s3.ID) {
		t.Errorf("regrant conflict message %q does not name %s", vault.ErrorMessage(err), s3.ID)
	}
	sameSecret(t, f.mustGetSecret(user, s1.ID), s1)

	y := f.mustSecret(user, "Y", value("y"), p1, p4)
	_, err = f.svc.UpdateSecret(f.ctx, user, y.ID, vault.SecretPatch{Name: ptr("X")})
	wantErr(t, err, vault.ECONFLICT, "profile_ids")
	if !strings.Contains(vault.ErrorMessage(err), s1.ID) {
		t.Errorf("rename conflict message %q does not name %s", vault.ErrorMessage(err), s1.ID)
	}
	sameSecret(t, f.mustGetSecret(user, y.ID), y)

	// Once y's grants leave p1, the rename is fine: no profile then gets
	// X twice.
	f.mustUpdateSecret(user, y.ID, vault.SecretPatch{ProfileIDs: []string{p4.ID}, SetProfileIDs: true})
	f.mustUpdateSecret(user, y.ID, vault.SecretPatch{Name: ptr("X")})
	f.wantEnv(user, p4.ID, map[string]string{"X": value("y")})

	f.wantEnv(user, p1.ID, map[string]string{"X": value("x1")})
	f.wantEnv(user, p2.ID, map[string]string{"X": value("x2")})
	f.wantEnv(user, p3.ID, map[string]string{"X": value("x3")})
}

func testOverrideRule(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2 := f.mustProfile(user, "granted"), f.mustProfile(user, "plain")

	org := f.mustSecret(user, "FOO", value("org"))
	repo := f.mustSecret(user, "FOO", value("repo"), p1)
	f.mustSecret(user, "BAR", value("bar"))
	f.mustSecret(user, "BAZ", value("baz"), p1)

	f.wantEnv(user, p1.ID, map[string]string{"FOO": value("repo"), "BAR": value("bar"), "BAZ": value("baz")})
	f.wantEnv(user, p2.ID, map[string]string{"FOO": value("org"), "BAR": value("bar")})

	sources, err := f.svc.ProfileSecrets(f.ctx, user, p1.ID)
	if err != nil {
		t.Fatalf("profile secrets: %v", err)
	}
	var foo *vault.EnvSecret
	for i := range sources {
		if sources[i].Name == "FOO" {
			foo = &sources[i]
		}
	}
	if foo == nil || foo.SecretID != repo.ID || foo.Scope != vault.ScopeAgents || foo.Version != 1 {
		t.Errorf("FOO on the granted profile comes from %+v, want secret %s (agents)", foo, repo.ID)
	}
	if names := ids(sources, func(e vault.EnvSecret) string { return e.Name }); !slices.Equal(names, []string{"BAR", "BAZ", "FOO"}) {
		t.Errorf("profile secrets names %v, want [BAR BAZ FOO]", names)
	}
	plain, err := f.svc.GetDecryptedForProfileWithSources(f.ctx, user, p2.ID)
	if err != nil {
		t.Fatalf("decrypt for plain profile: %v", err)
	}
	for _, e := range plain {
		if e.Name == "FOO" && e.SecretID != org.ID {
			t.Errorf("FOO on the plain profile comes from %s, want %s", e.SecretID, org.ID)
		}
	}

	if err := f.svc.DeleteSecret(f.ctx, user, repo.ID); err != nil {
		t.Fatalf("delete override: %v", err)
	}
	f.wantEnv(user, p1.ID, map[string]string{"FOO": value("org"), "BAR": value("bar"), "BAZ": value("baz")})
}

func testOtherUsersAreInvisible(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa := f.mustProfile(alice, "alice's")
	pb := f.mustProfile(bob, "bob's")
	sa := f.mustSecret(alice, "SHARED", value("alice all"))
	sg := f.mustSecret(alice, "GRANTED", value("alice granted"), pa)
	never := vault.NewID(vault.PrefixSecret)
	neverProfile := vault.NewID(vault.PrefixProfile)

	// sameAnswer checks that another user's id gets exactly the answer of
	// an id that never existed.
	sameAnswer := func(t *testing.T, what string, theirs error, theirID string, missing error, missingID string) {
		t.Helper()
		wantErr(t, theirs, vault.ENOTFOUND, "")
		wantErr(t, missing, vault.ENOTFOUND, "")
		a := strings.ReplaceAll(vault.ErrorMessage(theirs), theirID, "<id>")
		b := strings.ReplaceAll(vault.ErrorMessage(missing), missingID, "<id>")
		if a != b {
			t.Errorf("%s: another user's id answers %q, an unknown id %q", what, a, b)
		}
	}

	for _, id := range []string{sa.ID, sg.ID} {
		_, errTheirs := f.svc.Secret(f.ctx, bob, id)
		_, errNever := f.svc.Secret(f.ctx, bob, never)
		sameAnswer(t, "get secret", errTheirs, id, errNever, never)

		_, errTheirs = f.svc.UpdateSecret(f.ctx, bob, id, vault.SecretPatch{Value: ptr(value("bob was here"))})
		_, errNever = f.svc.UpdateSecret(f.ctx, bob, never, vault.SecretPatch{Value: ptr(value("bob was here"))})
		sameAnswer(t, "update secret", errTheirs, id, errNever, never)

		_, errTheirs = f.svc.UpdateSecret(f.ctx, bob, id, vault.SecretPatch{Name: ptr("STOLEN")})
		wantErr(t, errTheirs, vault.ENOTFOUND, "")

		sameAnswer(t, "delete secret", f.svc.DeleteSecret(f.ctx, bob, id), id, f.svc.DeleteSecret(f.ctx, bob, never), never)
	}

	_, errTheirs := f.svc.Profile(f.ctx, bob, pa.ID)
	_, errNever := f.svc.Profile(f.ctx, bob, neverProfile)
	sameAnswer(t, "get profile", errTheirs, pa.ID, errNever, neverProfile)
	_, errTheirs = f.svc.UpdateProfile(f.ctx, bob, pa.ID, vault.ProfilePatch{Name: ptr("mine now")})
	_, errNever = f.svc.UpdateProfile(f.ctx, bob, neverProfile, vault.ProfilePatch{Name: ptr("mine now")})
	sameAnswer(t, "update profile", errTheirs, pa.ID, errNever, neverProfile)
	sameAnswer(t, "delete profile", f.svc.DeleteProfile(f.ctx, bob, pa.ID), pa.ID, f.svc.DeleteProfile(f.ctx, bob, neverProfile), neverProfile)

	env, errTheirs := f.svc.GetDecryptedForProfile(f.ctx, bob, pa.ID)
	if env != nil {
		t.Errorf("another user's profile gave an env of %d names", len(env))
	}
	_, errNever = f.svc.GetDecryptedForProfile(f.ctx, bob, neverProfile)
	sameAnswer(t, "env of profile", errTheirs, pa.ID, errNever, neverProfile)
	_, errTheirs = f.svc.ProfileSecrets(f.ctx, bob, pa.ID)
	_, errNever = f.svc.ProfileSecrets(f.ctx, bob, neverProfile)
	sameAnswer(t, "profile secrets", errTheirs, pa.ID, errNever, neverProfile)

	// Bob's lists and env hold nothing of Alice's.
	if list := f.mustAllSecrets(bob); len(list) != 0 {
		t.Errorf("bob lists %d secrets, want 0", len(list))
	}
	page, err := f.svc.Profiles(f.ctx, bob, vault.ListOptions{})
	if err != nil || !slices.Equal(profileIDs(page.Items), []string{pb.ID}) {
		t.Errorf("bob's profiles: %v, %v; want [%s]", profileIDs(page.Items), err, pb.ID)
	}
	f.wantEnv(bob, pb.ID, map[string]string{})
	// ... and Bob may use Alice's names for his own.
	f.mustSecret(bob, "SHARED", value("bob all"))
	f.wantEnv(bob, pb.ID, map[string]string{"SHARED": value("bob all")})

	// Alice's objects are as they were.
	sameSecret(t, f.mustGetSecret(alice, sa.ID), sa)
	sameSecret(t, f.mustGetSecret(alice, sg.ID), sg)
	sameProfile(t, f.mustGetProfile(alice, pa.ID), pa)
	f.wantEnv(alice, pa.ID, map[string]string{"SHARED": value("alice all"), "GRANTED": value("alice granted")})
}

func testTxIsScopedToItsUser(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa := f.mustProfile(alice, "alice's")
	pb := f.mustProfile(bob, "bob's")
	sa := f.mustSecret(alice, "GRANTED", value("a"), pa)
	sall := f.mustSecret(alice, "ALL", value("all"))

	err := f.store.Update(f.ctx, bob, func(tx vault.Tx) error {
		_, err := tx.Secret(f.ctx, sa.ID)
		wantErr(t, err, vault.ENOTFOUND, "")
		wantErr(t, tx.DeleteSecret(f.ctx, sa.ID), vault.ENOTFOUND, "")
		hijack := *sall
		hijack.UserID = bob
		hijack.Description = "bob was here"
		wantErr(t, tx.UpdateSecret(f.ctx, &hijack), vault.ENOTFOUND, "")

		_, err = tx.Profile(f.ctx, pa.ID)
		wantErr(t, err, vault.ENOTFOUND, "")
		hp := *pa
		hp.UserID = bob
		hp.Name = "bob's now"
		wantErr(t, tx.UpdateProfile(f.ctx, &hp), vault.ENOTFOUND, "")
		wantErr(t, tx.DeleteProfile(f.ctx, pa.ID), vault.ENOTFOUND, "")

		found, err := tx.ExistingProfileIDs(f.ctx, []string{pa.ID, pb.ID, vault.NewID(vault.PrefixProfile)})
		if err != nil || !slices.Equal(found, []string{pb.ID}) {
			t.Errorf("ExistingProfileIDs: %v, %v; want [%s]", found, err, pb.ID)
		}
		named, err := tx.SecretsNamed(f.ctx, "GRANTED")
		if err != nil || len(named) != 0 {
			t.Errorf("SecretsNamed of alice's name: %d secrets, %v", len(named), err)
		}
		n, err := tx.CountSecrets(f.ctx)
		if err != nil || n != 0 {
			t.Errorf("CountSecrets: %d, %v; want 0", n, err)
		}
		list, err := tx.Secrets(f.ctx, vault.ListFilter{Limit: 100})
		if err != nil || len(list) != 0 {
			t.Errorf("Secrets: %d, %v; want none", len(list), err)
		}
		profiles, err := tx.Profiles(f.ctx, vault.ListFilter{Limit: 100})
		if err != nil || !slices.Equal(profileIDs(profiles), []string{pb.ID}) {
			t.Errorf("Profiles: %v, %v; want [%s]", profileIDs(profiles), err, pb.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("update as bob: %v", err)
	}

	_, err = f.store.SecretsForProfile(f.ctx, bob, pa.ID)
	wantErr(t, err, vault.ENOTFOUND, "")

	f.wantStrayGrantRefused(alice, bob, pa, sa, sall)

}

// wantStrayGrantRefused checks that a grant of bob's secret to alice's
// profile pa is refused by the store itself, not only by the service's
// check, and that alice's secrets sa and sall are as they were.
func (f *fixture) wantStrayGrantRefused(alice, bob string, pa *vault.Profile, sa, sall *vault.Secret) {
	t := f.t
	t.Helper()
	now := f.now().UTC().Truncate(time.Microsecond)
	stray := &vault.Secret{
		ID: vault.NewID(vault.PrefixSecret), UserID: bob, Name: "STRAY", Scope: vault.ScopeAgents,
		ProfileIDs: []string{pa.ID}, Version: 1, SealedValue: []byte{1, 2, 3}, SealedKey: []byte{4, 5, 6},
		MasterKeyID: f.keys.CurrentID(), CreatedAt: now, UpdatedAt: now,
	}
	var createErr error
	_ = f.store.Update(f.ctx, bob, func(tx vault.Tx) error {
		createErr = tx.CreateSecret(f.ctx, stray)
		return createErr
	})
	if createErr == nil {
		t.Errorf("Tx.CreateSecret granted bob's secret to alice's profile")
	}
	if n := f.mustCount(bob); n != 0 {
		t.Errorf("bob holds %d secrets after a refused grant, want 0", n)
	}
	got, err := f.store.SecretsForProfile(f.ctx, alice, pa.ID)
	if err != nil {
		t.Fatalf("secrets for alice's profile: %v", err)
	}
	if gotIDs := secretIDs(got); slices.Contains(gotIDs, stray.ID) || len(gotIDs) != 2 {
		t.Errorf("alice's profile receives %v, want exactly %s and %s", gotIDs, sa.ID, sall.ID)
	}

	sameSecret(t, f.mustGetSecret(alice, sa.ID), sa)
	sameSecret(t, f.mustGetSecret(alice, sall.ID), sall)
	sameProfile(t, f.mustGetProfile(alice, pa.ID), pa)
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

func testQuota(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1 := f.mustProfile(user, "p1")
	f.mustSecret(user, "ONE", value("1"))
	two := f.mustSecret(user, "TWO", value("2"), p1)
	f.mustSecret(user, "THREE", value("3"))

	_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "FOUR", Value: value("4")})
	wantErr(t, err, vault.ECONFLICT, "")
	if n := f.mustCount(user); n != 3 {
		t.Errorf("count after a refused create: %d, want 3", n)
	}
	err = f.store.View(f.ctx, user, func(tx vault.Tx) error {
		named, err := tx.SecretsNamed(f.ctx, "FOUR")
		if len(named) != 0 {
			t.Errorf("the refused secret was written")
		}
		return err
	})
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	f.wantEnv(user, p1.ID, map[string]string{"ONE": value("1"), "TWO": value("2"), "THREE": value("3")})

	// The limit is per user.
	f.mustSecret(f.mustUser("bob"), "FOUR", value("4"))

	if err := f.svc.DeleteSecret(f.ctx, user, two.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	f.mustSecret(user, "FOUR", value("4"))
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
			return tx.UpdateSecret(f.ctx, dst)
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
