package main

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// secretsStore is where the secrets commands run: the variables and the
// store flags of every command, and a service of the test's own on the
// same store, to make profiles and open values as a task would receive
// them.
type secretsStore struct {
	migratedStore
	svc *vault.Service
}

func sqliteSecretsStore(t *testing.T) secretsStore {
	return newSecretsStore(t, migratedSQLite(t))
}

// postgresSecretsStore runs the commands as the README says to on
// PostgreSQL: migrations as the owner (DATABASE_MIGRATE_URL), everything
// else as the service role, under row-level security (DATABASE_URL).
func postgresSecretsStore(t *testing.T) secretsStore {
	return newSecretsStore(t, migratedPostgres(t))
}

func newSecretsStore(t *testing.T, ms migratedStore) secretsStore {
	return secretsStore{migratedStore: ms, svc: vault.NewService(ms.store, mustKeyring(t, ms.key), vault.Options{})}
}

// run runs `envvault secrets args… <store flags>`.
func (s secretsStore) run(t *testing.T, args ...string) (*instance, error) {
	t.Helper()
	return start(t, s.env, append(append([]string{"admin", "secrets"}, args...), s.args...)...)
}

func (s secretsStore) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	in, err := s.run(t, args...)
	if err != nil {
		t.Fatalf("envvault secrets %s: %v\n%s", strings.Join(args, " "), err, in.output())
	}
	noValues(t, in.output())
	return in.stdout.String()
}

func (s secretsStore) mustUser(t *testing.T, name string) string {
	t.Helper()
	in := mustStart(t, s.env, append([]string{"user", "create", name, "--json"}, s.args...)...)
	var out struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(in.stdout.String()), &out); err != nil {
		t.Fatalf("user create --json printed %q: %v", in.stdout.String(), err)
	}
	return out.UserID
}

func (s secretsStore) mustProfile(t *testing.T, userID, name string) string {
	t.Helper()
	p, err := s.svc.CreateProfile(t.Context(), userID, vault.ProfileInput{Name: name, Image: "debian:12"})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func (s secretsStore) mustEnv(t *testing.T, userID, profileID string) map[string]string {
	t.Helper()
	env, err := s.svc.GetDecryptedForProfile(t.Context(), userID, profileID)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// noValues fails if out holds a value the tests import.
func noValues(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, canary) {
		t.Errorf("the output holds a secret value:\n%s", strings.ReplaceAll(out, canary, "<CANARY>"))
	}
}

func writeEnvFile(t *testing.T, content string) string {
	t.Helper()
	return writeTemp(t, "app.env", content)
}

func TestSecretsImportSQLite(t *testing.T) {
	t.Parallel()
	testSecretsImport(t, sqliteSecretsStore(t))
}

func TestSecretsImportPostgres(t *testing.T) {
	t.Parallel()
	testSecretsImport(t, postgresSecretsStore(t))
}

func testSecretsImport(t *testing.T, s secretsStore) {
	alice := s.mustUser(t, "alice")
	bob := s.mustUser(t, "bob")
	reviewer, coder := s.mustProfile(t, alice, "reviewer"), s.mustProfile(t, alice, "coder")

	good := writeEnvFile(t, "# alice's keys\nGITHUB_TOKEN="+canary+"-gh\nexport MCP_URL='"+canary+"-mcp'\n\nDB_URL=\""+canary+"-db\" # note\n")
	out := s.mustRun(t, "import", good, "--user", alice, "--scope", "all")
	if !strings.Contains(out, "3 created, 0 updated, 0 unchanged") {
		t.Errorf("import printed %q, want the counts", out)
	}
	want := map[string]string{"GITHUB_TOKEN": canary + "-gh", "MCP_URL": canary + "-mcp", "DB_URL": canary + "-db"}
	for _, p := range []string{reviewer, coder} {
		if got := s.mustEnv(t, alice, p); !maps.Equal(got, want) {
			t.Errorf("env of profile %s after import: %d names, want %v", p, len(got), slices.Sorted(maps.Keys(want)))
		}
	}

	// --scope agents, flags before and after the file: the coder alone
	// gets its own GITHUB_TOKEN.
	agents := writeEnvFile(t, "GITHUB_TOKEN="+canary+"-coder\n")
	out = s.mustRun(t, "import", "--scope", "agents", agents, "--user", alice, "--profile", coder)
	if !strings.Contains(out, "1 created") {
		t.Errorf("import printed %q", out)
	}
	if got := s.mustEnv(t, alice, coder)["GITHUB_TOKEN"]; got != canary+"-coder" {
		t.Errorf("coder's GITHUB_TOKEN is not the agents secret")
	}
	if got := s.mustEnv(t, alice, reviewer)["GITHUB_TOKEN"]; got != canary+"-gh" {
		t.Errorf("reviewer's GITHUB_TOKEN changed")
	}

	// list: names, scopes, profiles by name; never a value.
	list := s.mustRun(t, "list", "--user", alice)
	for _, re := range []string{`(?m)^NAME\s+SCOPE\s+PROFILES`, `(?m)^DB_URL\s+all\s+\(all\)\s+1 `, `(?m)^GITHUB_TOKEN\s+agents\s+coder\s+1 `,
		`(?m)^GITHUB_TOKEN\s+all\s+\(all\)\s+1 `, `(?m)^MCP_URL\s+all\s+\(all\)\s+1 `} {
		if !regexp.MustCompile(re).MatchString(list) {
			t.Errorf("list output does not match %s:\n%s", re, list)
		}
	}
	if list := s.mustRun(t, "list", "--user", bob); !strings.Contains(list, "No secrets") {
		t.Errorf("bob's list:\n%s", list)
	}

	before := s.mustRun(t, "list", "--user", alice)
	beforeEnv := s.mustEnv(t, alice, coder)

	// One bad line: nothing changes, and the error names the line.
	one := writeEnvFile(t, "GITHUB_TOKEN="+canary+"-new\nNEW_ONE="+canary+"\nLD_PRELOAD="+canary+"\n")
	in, err := s.run(t, "import", one, "--user", alice, "--scope", "all")
	if err == nil || !strings.Contains(err.Error(), "1 bad lines, nothing imported") || !strings.Contains(err.Error(), "line 3: name: LD_PRELOAD") {
		t.Errorf("import of a file with one bad line: %v", err)
	}
	noValues(t, in.output()+errString(err))

	// Three bad lines, of the parser's and of the vault's rules: all named.
	three := writeEnvFile(t, "GITHUB_TOKEN="+canary+"-new\n"+canary+" no equals sign\nOK="+canary+"\nEMPTY=\nQUOTE=\""+canary+"\n")
	in, err = s.run(t, "import", three, "--user", alice, "--scope", "all")
	if err == nil {
		t.Fatal("import of a file with three bad lines succeeded")
	}
	for _, want := range []string{"3 bad lines", "line 2: expected NAME=value", "line 4: value of EMPTY: is required", "line 5: value of QUOTE: missing closing quote"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	noValues(t, in.output()+errString(err))

	// A line that collides with an existing secret: also named.
	both := writeEnvFile(t, "FRESH="+canary+"\nGITHUB_TOKEN="+canary+"-both\n")
	_, err = s.run(t, "import", both, "--user", alice, "--scope", "agents", "--profile", reviewer, "--profile", coder)
	if err == nil || !strings.Contains(err.Error(), "line 2: profile_ids:") {
		t.Errorf("import of a colliding line: %v", err)
	}
	noValues(t, errString(err))

	if after := s.mustRun(t, "list", "--user", alice); after != before {
		t.Errorf("refused imports changed the secrets:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := s.mustEnv(t, alice, coder); !maps.Equal(got, beforeEnv) {
		t.Errorf("refused imports changed the coder's env")
	}

	// Wrong invocations.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"import", good, "--scope", "all"}, "needs --user"},
		{[]string{"import", good, "--user", alice}, "needs --scope"},
		{[]string{"import", good, "--user", alice, "--scope", "some"}, "must be all or agents"},
		{[]string{"import", good, "--user", alice, "--scope", "agents"}, "profile_ids"},
		{[]string{"import", good, "--user", alice, "--scope", "agents", "--profile", "prof_nope"}, "prof_nope is not one of your profiles"},
		{[]string{"import", filepath.Join(t.TempDir(), "missing.env"), "--user", alice, "--scope", "all"}, "missing.env"},
		{[]string{"import"}, "needs a FILE"},
		{[]string{"list"}, "needs --user"},
		{[]string{"import", good, "--user", vault.NewID(vault.PrefixUser), "--scope", "all"}, "user not found"},
	} {
		_, err := s.run(t, bad.args...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("envvault secrets %s: %v, want an error containing %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSecretsImportLockedNames: the operator's locked names, refused by
// serve, are refused by import too, from the flag or the variable.
func TestSecretsImportLockedNames(t *testing.T) {
	s := sqliteSecretsStore(t)
	alice := s.mustUser(t, "alice")
	file := writeEnvFile(t, "PLATFORM_TOKEN="+canary+"\n")
	_, err := s.run(t, "import", file, "--user", alice, "--scope", "all", "--locked-names", "OTHER,PLATFORM_TOKEN")
	if err == nil || !strings.Contains(err.Error(), "line 1: name: PLATFORM_TOKEN is locked") {
		t.Errorf("import of a locked name: %v", err)
	}
	t.Setenv("BASELINE_LOCKED_NAMES", "PLATFORM_TOKEN")
	_, err = s.run(t, "import", file, "--user", alice, "--scope", "all")
	if err == nil || !strings.Contains(err.Error(), "line 1: name: PLATFORM_TOKEN is locked") {
		t.Errorf("import of a name locked by BASELINE_LOCKED_NAMES: %v", err)
	}
	// $USER, set in every shell, is never taken for --user.
	t.Setenv("USER", alice)
	if _, err := s.run(t, "list"); err == nil || !strings.Contains(err.Error(), "needs --user") {
		t.Errorf("list without --user, with USER set: %v", err)
	}
}
