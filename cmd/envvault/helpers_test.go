package main

// The helpers every test of the command line shares: running Main in
// process, speaking to it over HTTP, and the stores the commands migrated.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// canary is a secret value planted by the tests: it must never appear in
// anything envvault prints or logs.
const canary = "CANARY-v4lue-9f1c2e7d-never-log-me"

// instance is one Main run in process.
type instance struct {
	m      *Main
	stdout *testenv.SyncBuffer
	stderr *testenv.SyncBuffer
}

// url is the base URL of a serving instance.
func (in *instance) url() string { return "http://" + in.m.Addr() }

// output is everything the instance printed and logged.
func (in *instance) output() string { return in.stdout.String() + in.stderr.String() }

// start runs `envvault args...` in process with env as the only
// variables Main reads itself (keys, DATABASE_URL), as the binary would:
// ParseFlags, then Run. It returns the first error; the instance is closed
// when the test ends.
func start(t *testing.T, env map[string]string, args ...string) (*instance, error) {
	t.Helper()
	return startMain(t, env, nil, args...)
}

// startMain is start with setup, if not nil, called on the Main before it
// parses its flags.
func startMain(t *testing.T, env map[string]string, setup func(*Main), args ...string) (*instance, error) {
	t.Helper()
	in := &instance{stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}}
	in.m = &Main{Stdout: in.stdout, Stderr: in.stderr, Getenv: func(k string) string { return env[k] }}
	if setup != nil {
		setup(in.m)
	}
	t.Cleanup(func() {
		if err := in.m.Close(); err != nil {
			t.Errorf("close envvault %s: %v", strings.Join(args, " "), err)
		}
	})
	if err := in.m.ParseFlags(t.Context(), args); err != nil {
		return in, err
	}
	return in, in.m.Run(t.Context())
}

// mustStart is start that fails the test on an error.
func mustStart(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	in, err := start(t, env, args...)
	if err != nil {
		t.Fatalf("envvault %s: %v\n%s", strings.Join(args, " "), err, in.output())
	}
	return in
}

// mustFail runs envvault and checks that it fails with an error holding
// want.
func mustFail(t *testing.T, env map[string]string, want string, args ...string) *instance {
	t.Helper()
	in, err := start(t, env, args...)
	if err == nil {
		t.Fatalf("envvault %s succeeded, want an error containing %q", strings.Join(args, " "), want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("envvault %s: error %q, want it to contain %q", strings.Join(args, " "), err, want)
	}
	return in
}

// createUser runs `envvault user create NAME --json` and returns the token.
func createUser(t *testing.T, env map[string]string, name string, storeArgs ...string) string {
	t.Helper()
	args := append([]string{"user", "create", name}, storeArgs...)
	args = append(args, "--json")
	in := mustStart(t, env, args...)
	var out struct {
		UserID string `json:"user_id"`
		Token  string `json:"token"`
	}
	if err := json.Unmarshal([]byte(in.stdout.String()), &out); err != nil {
		t.Fatalf("user create --json printed %q: %v", in.stdout.String(), err)
	}
	if !strings.HasPrefix(out.UserID, vault.PrefixUser) || !strings.HasPrefix(out.Token, vault.PrefixToken) {
		t.Fatalf("user create --json printed %q", in.stdout.String())
	}
	return out.Token
}

// client speaks to a running envvault over real HTTP.
type client struct {
	t     *testing.T
	base  string
	token string
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
// It returns the status.
func (c *client) do(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if strings.Contains(string(raw), canary) {
		c.t.Errorf("%s %s answered with the canary value: %s", method, path, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: status %d, body %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// expect is do that fails the test unless the status is want.
func (c *client) expect(want int, method, path string, body any, out any) {
	c.t.Helper()
	var raw json.RawMessage
	if got := c.do(method, path, body, &raw); got != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %s: %v", method, path, raw, err)
		}
	}
}

// migratedStore is a store that `envvault migrate` made, as the README
// says to: on PostgreSQL the owner migrates (DATABASE_MIGRATE_URL) and the
// service role serves (DATABASE_URL), under row-level security.
type migratedStore struct {
	env   map[string]string     // ENCRYPTION_KEY, and on PostgreSQL the database URLs
	args  []string              // --data-dir, on SQLite
	key   string                // ENCRYPTION_KEY
	store vault.Store           // opened as the service opens it; closed when the test ends
	path  string                // the SQLite file, on SQLite
	roles testenv.PostgresRoles // on PostgreSQL
}

// migratedSQLite is a migratedStore in a SQLite file of its own.
func migratedSQLite(t *testing.T) migratedStore {
	t.Helper()
	dir := t.TempDir()
	ms := migratedStore{
		env:  map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()},
		args: []string{"--data-dir", dir},
		path: filepath.Join(dir, sqliteFile),
	}
	ms.key = ms.env["ENCRYPTION_KEY"]
	mustStart(t, ms.env, "migrate", "--data-dir", dir)
	db, err := sqlite.Open(t.Context(), ms.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms.store = db
	return ms
}

// migratedPostgres is a migratedStore in a PostgreSQL database of its own.
func migratedPostgres(t *testing.T) migratedStore {
	t.Helper()
	roles := testenv.RequirePostgresRoles(t)
	ms := migratedStore{
		env:   map[string]string{"ENCRYPTION_KEY": seal.GenerateKey(), "DATABASE_URL": roles.Service, "DATABASE_MIGRATE_URL": roles.Owner},
		roles: roles,
	}
	ms.key = ms.env["ENCRYPTION_KEY"]
	mustStart(t, ms.env, "migrate")
	db, err := postgres.Open(t.Context(), roles.Service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms.store = db
	return ms
}

// mustKeyring is the keyring of the master key encoded as ENCRYPTION_KEY
// gives it.
func mustKeyring(t *testing.T, encoded string) *seal.Keyring {
	t.Helper()
	raw, err := seal.ParseKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(raw)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// sqliteService opens the SQLite store of dataDir with a service whose
// master key is key alone. The caller closes db.
func sqliteService(t *testing.T, dataDir, key string) (*sqlite.DB, *seal.Keyring, *vault.Service) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dataDir, sqliteFile))
	if err != nil {
		t.Fatal(err)
	}
	keys := mustKeyring(t, key)
	return db, keys, vault.NewService(db, keys, vault.Options{})
}

// writeTemp writes content to a file named name in a directory of the
// test's own and returns its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
