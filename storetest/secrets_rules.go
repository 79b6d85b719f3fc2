package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

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
