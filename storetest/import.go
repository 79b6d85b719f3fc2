package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// importTests are the suite of Service.ImportSecrets on a store: an
// import is one transaction, all of it or none, and every bad entry is
// named by its line.
var importTests = []test{
	{name: "CreatesAndUpdatesAll", fn: testImportAll},
	{name: "Agents", fn: testImportAgents},
	{name: "OneBadLineChangesNothing", opts: vault.Options{Names: vault.NamePolicy{Locked: []string{"PLATFORM_TOKEN"}}}, fn: testImportOneBadLine},
	{name: "EveryBadLineIsNamed", fn: testImportEveryBadLine},
	{name: "ConflictChangesNothing", fn: testImportConflict},
	{name: "Quota", opts: vault.Options{MaxSecrets: 3}, fn: testImportQuota},
	{name: "ProfilesAndUser", fn: testImportProfilesAndUser},
	{name: "FailedWriteRollsBack", fn: testImportFailedWriteRollsBack},
}

func (f *fixture) mustImport(userID string, entries []vault.ImportEntry, scope vault.Scope, profiles ...*vault.Profile) vault.ImportResult {
	f.t.Helper()
	res, err := f.svc.ImportSecrets(f.ctx, userID, entries, scope, profileIDs(profiles))
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("import: %v", err)
	}
	return res
}

// entries makes import entries of "NAME=value" strings, on lines 1, 2, ….
func entries(lines ...string) []vault.ImportEntry {
	out := make([]vault.ImportEntry, len(lines))
	for i, l := range lines {
		name, val, _ := strings.Cut(l, "=")
		out[i] = vault.ImportEntry{Line: i + 1, Name: name, Value: val}
	}
	return out
}

// snapshot is everything of a user an import could change: the secrets
// as stored (sealed, with versions and grants) and each profile's env.
func (f *fixture) snapshot(userID string, profiles ...*vault.Profile) string {
	f.t.Helper()
	var b strings.Builder
	for _, s := range f.mustAllSecrets(userID) {
		fmt.Fprintf(&b, "%s %s %s %v v%d %x %x %s\n", s.ID, s.Name, s.Scope, s.ProfileIDs, s.Version, s.SealedValue, s.SealedKey, s.UpdatedAt)
	}
	for _, p := range profiles {
		fmt.Fprintf(&b, "%s: %s\n", p.ID, envString(f.mustEnv(userID, p.ID)))
	}
	return b.String()
}

// wantLines checks that err is an *vault.ImportError naming exactly lines,
// of the code, and holding no value.
func wantLines(t *testing.T, err error, code string, lines ...int) {
	t.Helper()
	wantErr(t, err, code, "")
	var ie *vault.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an *vault.ImportError", err)
	}
	var got []int
	for _, l := range ie.Lines {
		got = append(got, l.Line)
		if l.Message == "" {
			t.Errorf("line %d has no message", l.Line)
		}
	}
	if !slices.Equal(got, lines) {
		t.Errorf("bad lines = %v, want %v: %v", got, lines, err)
	}
	for _, l := range lines {
		if !strings.Contains(err.Error(), fmt.Sprintf("line %d: ", l)) {
			t.Errorf("error does not name line %d: %v", l, err)
		}
	}
}

func testImportAll(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p := f.mustProfile(u, "agent")
	existing := f.mustSecret(u, "EXISTING", value("old"))

	res := f.mustImport(u, entries("GITHUB_TOKEN="+value("gh"), "EXISTING="+value("new"), "MCP_URL="+value("mcp")), vault.ScopeAll)
	if res != (vault.ImportResult{Created: 2, Updated: 1}) {
		t.Errorf("result = %+v, want 2 created, 1 updated", res)
	}
	f.wantEnv(u, p.ID, map[string]string{"GITHUB_TOKEN": value("gh"), "EXISTING": value("new"), "MCP_URL": value("mcp")})
	after := f.mustGetSecret(u, existing.ID)
	if after.Version != 2 || after.Scope != vault.ScopeAll {
		t.Errorf("updated secret: version %d, scope %s; want version 2, scope all (updated in place)", after.Version, after.Scope)
	}
	// As with UpdateSecret, the value replaced is kept in history.
	if versions, err := f.svc.SecretVersions(f.ctx, u, existing.ID); err != nil || len(versions) != 2 {
		t.Errorf("versions of the updated secret: %d, %v; want 2 (the new value and the one it replaced)", len(versions), err)
	}
	if n := f.mustCount(u); n != 3 {
		t.Errorf("the user holds %d secrets, want 3", n)
	}

	// The same file again changes nothing: no new version.
	before := f.snapshot(u, p)
	res = f.mustImport(u, entries("GITHUB_TOKEN="+value("gh"), "EXISTING="+value("new"), "MCP_URL="+value("mcp")), vault.ScopeAll)
	if res != (vault.ImportResult{Unchanged: 3}) {
		t.Errorf("second import: result = %+v, want 3 unchanged", res)
	}
	if got := f.snapshot(u, p); got != before {
		t.Errorf("a second import of the same file changed the secrets:\n got %s\nwant %s", got, before)
	}
}

func testImportAgents(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p1, p2, p3 := f.mustProfile(u, "one"), f.mustProfile(u, "two"), f.mustProfile(u, "three")
	f.mustSecret(u, "TOKEN", value("all"))

	res := f.mustImport(u, entries("TOKEN="+value("agents"), "ONLY_AGENTS="+value("x")), vault.ScopeAgents, p2, p1)
	if res != (vault.ImportResult{Created: 2}) {
		t.Errorf("result = %+v, want 2 created", res)
	}
	// The agents secret overrides the all one for the profiles granted.
	f.wantEnv(u, p1.ID, map[string]string{"TOKEN": value("agents"), "ONLY_AGENTS": value("x")})
	f.wantEnv(u, p2.ID, map[string]string{"TOKEN": value("agents"), "ONLY_AGENTS": value("x")})
	f.wantEnv(u, p3.ID, map[string]string{"TOKEN": value("all")})

	// Again with the same profiles (in another order): the same secrets
	// are updated.
	res = f.mustImport(u, entries("TOKEN="+value("agents2"), "ONLY_AGENTS="+value("x")), vault.ScopeAgents, p1, p2)
	if res != (vault.ImportResult{Updated: 1, Unchanged: 1}) {
		t.Errorf("result = %+v, want 1 updated, 1 unchanged", res)
	}
	f.wantEnv(u, p1.ID, map[string]string{"TOKEN": value("agents2"), "ONLY_AGENTS": value("x")})
	if n := f.mustCount(u); n != 3 {
		t.Errorf("the user holds %d secrets, want 3", n)
	}

	// To the third profile alone: new secrets of the same names.
	res = f.mustImport(u, entries("TOKEN="+value("three")), vault.ScopeAgents, p3)
	if res != (vault.ImportResult{Created: 1}) {
		t.Errorf("result = %+v, want 1 created", res)
	}
	f.wantEnv(u, p3.ID, map[string]string{"TOKEN": value("three")})
	f.wantEnv(u, p1.ID, map[string]string{"TOKEN": value("agents2"), "ONLY_AGENTS": value("x")})
}

func testImportOneBadLine(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p := f.mustProfile(u, "agent")
	f.mustSecret(u, "KEEP", value("keep"))
	before := f.snapshot(u, p)
	for _, bad := range []struct {
		name  string
		entry string
	}{
		{"denied name", "LD_PRELOAD=" + value("x")},
		{"locked name", "PLATFORM_TOKEN=" + value("x")},
		{"bad name", "lower=" + value("x")},
		{"empty value", "EMPTY="},
		{"NUL in value", "NUL=" + value("a\x00b")},
		{"value too long", "LONG=" + value(strings.Repeat("x", vault.MaxValueLen))},
	} {
		t.Run(bad.name, func(t *testing.T) {
			f := f.sub(t)
			_, err := f.svc.ImportSecrets(f.ctx, u, entries("NEW_ONE="+value("1"), "KEEP="+value("changed"), bad.entry, "NEW_TWO="+value("2")), vault.ScopeAll, nil)
			wantLines(t, err, vault.EINVALID, 3)
			if got := f.snapshot(u, p); got != before {
				t.Errorf("a refused import changed the secrets:\n got %s\nwant %s", got, before)
			}
		})
	}
}

func testImportEveryBadLine(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p := f.mustProfile(u, "agent")
	before := f.snapshot(u, p)
	_, err := f.svc.ImportSecrets(f.ctx, u, entries(
		"GOOD="+value("1"),
		"NODE_OPTIONS="+value("--require evil"),
		"ALSO_GOOD="+value("2"),
		"EMPTY=",
		"GOOD="+value("twice"),
	), vault.ScopeAll, nil)
	wantLines(t, err, vault.EINVALID, 2, 4, 5)
	if got := f.snapshot(u, p); got != before {
		t.Errorf("a refused import changed the secrets:\n got %s\nwant %s", got, before)
	}
}

func testImportConflict(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p1, p2 := f.mustProfile(u, "one"), f.mustProfile(u, "two")
	f.mustSecret(u, "TOKEN", value("p1 only"), p1)
	f.mustSecret(u, "OTHER", value("p2 only"), p2)
	before := f.snapshot(u, p1, p2)
	// Granting both profiles would give p1 two TOKENs and p2 two OTHERs.
	_, err := f.svc.ImportSecrets(f.ctx, u, entries("FINE="+value("1"), "TOKEN="+value("both"), "OTHER="+value("both")), vault.ScopeAgents, []string{p1.ID, p2.ID})
	wantLines(t, err, vault.ECONFLICT, 2, 3)
	if got := f.snapshot(u, p1, p2); got != before {
		t.Errorf("a refused import changed the secrets:\n got %s\nwant %s", got, before)
	}
}

func testImportQuota(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p := f.mustProfile(u, "agent")
	f.mustSecret(u, "ONE", value("1"))
	f.mustSecret(u, "TWO", value("2"))
	before := f.snapshot(u, p)
	_, err := f.svc.ImportSecrets(f.ctx, u, entries("THREE="+value("3"), "FOUR="+value("4")), vault.ScopeAll, nil)
	wantErr(t, err, vault.ECONFLICT, "")
	if got := f.snapshot(u, p); got != before {
		t.Errorf("an import past the limit changed the secrets:\n got %s\nwant %s", got, before)
	}
	// Updates count for nothing: one new secret fits.
	if res := f.mustImport(u, entries("ONE="+value("one"), "TWO="+value("two"), "THREE="+value("3")), vault.ScopeAll); res != (vault.ImportResult{Created: 1, Updated: 2}) {
		t.Errorf("result = %+v, want 1 created, 2 updated", res)
	}
}

func testImportProfilesAndUser(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	mine := f.mustProfile(alice, "agent")
	bobs := f.mustProfile(bob, "agent")
	e := entries("TOKEN=" + value("x"))

	_, err := f.svc.ImportSecrets(f.ctx, alice, e, vault.ScopeAgents, []string{mine.ID, bobs.ID})
	wantErr(t, err, vault.EINVALID, "profile_ids")
	_, err = f.svc.ImportSecrets(f.ctx, alice, e, vault.ScopeAgents, nil)
	wantErr(t, err, vault.EINVALID, "profile_ids")
	_, err = f.svc.ImportSecrets(f.ctx, alice, e, vault.ScopeAll, []string{mine.ID})
	wantErr(t, err, vault.EINVALID, "profile_ids")
	_, err = f.svc.ImportSecrets(f.ctx, alice, e, "some", nil)
	wantErr(t, err, vault.EINVALID, "scope")
	_, err = f.svc.ImportSecrets(f.ctx, vault.NewID(vault.PrefixUser), e, vault.ScopeAll, nil)
	wantErr(t, err, vault.ENOTFOUND, "")
	if n := f.mustCount(alice); n != 0 {
		t.Errorf("alice holds %d secrets after refused imports, want 0", n)
	}
	// Bob's import lands in bob's secrets only.
	f.mustImport(bob, e, vault.ScopeAgents, bobs)
	f.wantEnv(bob, bobs.ID, map[string]string{"TOKEN": value("x")})
	f.wantEnv(alice, mine.ID, map[string]string{})
}

// failingStore is a store whose write transactions fail the nth write of a
// secret (create or update), as a database error would, after the writes
// before it are done.
type failingStore struct {
	vault.Store
	n int
}

var errInjected = errors.New("injected write failure")

func (s failingStore) Update(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return s.Store.Update(ctx, userID, func(tx vault.Tx) error {
		return fn(&failingTx{Tx: tx, left: s.n - 1})
	})
}

type failingTx struct {
	vault.Tx
	left int
}

func (t *failingTx) write() error {
	if t.left == 0 {
		return errInjected
	}
	t.left--
	return nil
}

func (t *failingTx) CreateSecret(ctx context.Context, s *vault.Secret) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.CreateSecret(ctx, s)
}

func (t *failingTx) UpdateSecret(ctx context.Context, s *vault.Secret, grants bool) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.UpdateSecret(ctx, s, grants)
}

// testImportFailedWriteRollsBack fails the last write of an import, after
// the others are done in the same transaction: none of them stays.
func testImportFailedWriteRollsBack(t *testing.T, f *fixture) {
	u := f.mustUser("alice")
	p := f.mustProfile(u, "agent")
	f.mustSecret(u, "EXISTING", value("old"))
	before := f.snapshot(u, p)
	svc := vault.NewService(failingStore{Store: f.store, n: 3}, f.keys, vault.Options{Now: f.now})
	_, err := svc.ImportSecrets(f.ctx, u, entries("NEW_ONE="+value("1"), "EXISTING="+value("new"), "NEW_TWO="+value("2")), vault.ScopeAll, nil)
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	noCanary(t, err)
	if !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error does not name the line that failed: %v", err)
	}
	if got := f.snapshot(u, p); got != before {
		t.Errorf("a failed import left writes behind:\n got %s\nwant %s", got, before)
	}
}
