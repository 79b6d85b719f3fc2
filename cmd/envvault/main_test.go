package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/seal"
)

type secretResp struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scope      string   `json:"scope"`
	ProfileIDs []string `json:"profile_ids"`
	Version    int      `json:"version"`
}

type listResp struct {
	Data []secretResp `json:"data"`
}

// exerciseSecrets creates, lists, patches and deletes secrets over HTTP,
// leaves one secret KEEP (all) holding the canary, and returns its id.
func exerciseSecrets(t *testing.T, c *client) string {
	t.Helper()
	var health map[string]any
	(&client{t: t, base: c.base}).expect(http.StatusOK, "GET", "/healthz", nil, &health)
	(&client{t: t, base: c.base}).expect(http.StatusUnauthorized, "GET", "/v1/secrets", nil, nil)

	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": "reviewer", "image": "alpine:3"}, &prof)

	var all, agents secretResp
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "API_TOKEN", "value": canary}, &all)
	c.expect(http.StatusCreated, "POST", "/v1/secrets",
		map[string]any{"name": "API_TOKEN", "value": canary + "-agents", "scope": "agents", "profile_ids": []string{prof.ID}}, &agents)
	if all.Scope != "all" || agents.Scope != "agents" || len(agents.ProfileIDs) != 1 {
		t.Fatalf("created %+v and %+v", all, agents)
	}
	c.expect(http.StatusConflict, "POST", "/v1/secrets", map[string]any{"name": "API_TOKEN", "value": "x" + canary}, nil)
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/secrets", map[string]any{"name": "api_token", "value": canary}, nil)

	var list listResp
	c.expect(http.StatusOK, "GET", "/v1/secrets", nil, &list)
	if len(list.Data) != 2 {
		t.Fatalf("listed %d secrets, want 2: %+v", len(list.Data), list)
	}

	var patched secretResp
	c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+all.ID, map[string]any{"name": "KEEP", "value": canary + "-2"}, &patched)
	if patched.Name != "KEEP" || patched.Version != 2 {
		t.Fatalf("patched to %+v, want name KEEP version 2", patched)
	}
	c.expect(http.StatusNoContent, "DELETE", "/v1/secrets/"+agents.ID, nil, nil)
	c.expect(http.StatusNotFound, "GET", "/v1/secrets/"+agents.ID, nil, nil)

	c.expect(http.StatusOK, "GET", "/v1/secrets", nil, &list)
	if len(list.Data) != 1 || list.Data[0].ID != all.ID {
		t.Fatalf("after delete listed %+v, want only %s", list.Data, all.ID)
	}
	return all.ID
}

// checkNoLeak fails if the canary or any key appears in what in printed.
func checkNoLeak(t *testing.T, in *instance, keys ...string) {
	t.Helper()
	out := in.output()
	if strings.Contains(out, canary) {
		t.Errorf("the canary value appears in the output:\n%s", out)
	}
	for _, k := range keys {
		if k != "" && strings.Contains(out, k) {
			t.Errorf("a master key appears in the output:\n%s", out)
		}
	}
}

func TestDev(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noEnv := map[string]string{}

	dev := mustStart(t, noEnv, "dev", "--addr", "127.0.0.1:0", "--data-dir", dir)

	keyPath := filepath.Join(dir, "dev.key")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("dev did not write its key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev.key has mode %04o, want 0600", fi.Mode().Perm())
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.ParseKey(string(key)); err != nil {
		t.Fatalf("dev.key holds no valid key: %v", err)
	}
	if !strings.Contains(dev.stderr.String(), "DEVELOPMENT MODE") {
		t.Errorf("dev printed no development-mode warning on stderr:\n%s", dev.stderr.String())
	}
	if !strings.Contains(dev.stderr.String(), "msg=listening addr="+dev.m.Addr()) {
		t.Errorf("dev logged no \"listening\" line with its address %s:\n%s", dev.m.Addr(), dev.stderr.String())
	}

	// The banner prints the URL and the token, once.
	banner := dev.stdout.String()
	m := regexp.MustCompile(`export ENVVAULT_TOKEN=(\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("dev printed no token:\n%s", banner)
	}
	token := m[1]
	if !strings.Contains(banner, "export ENVVAULT_URL="+dev.url()) {
		t.Errorf("dev banner lacks its URL %s:\n%s", dev.url(), banner)
	}
	if n := strings.Count(dev.output(), token); n != 1 {
		t.Errorf("the token appears %d times in dev's output, want exactly once", n)
	}

	c := &client{t: t, base: dev.url(), token: token}
	keepID := exerciseSecrets(t, c)

	// user create on dev's data dir, while dev runs, falls back to dev.key.
	alice := createUser(t, noEnv, "alice", "--data-dir", dir)
	ac := &client{t: t, base: dev.url(), token: alice}
	var list listResp
	ac.expect(http.StatusOK, "GET", "/v1/secrets", nil, &list)
	if len(list.Data) != 0 {
		t.Errorf("alice sees %d secrets of dev", len(list.Data))
	}
	ac.expect(http.StatusNotFound, "GET", "/v1/secrets/"+keepID, nil, nil)

	if err := dev.m.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, dev, strings.TrimSpace(string(key)))

	// A second start reuses the key and the data, and makes no new user.
	again := mustStart(t, noEnv, "dev", "--addr", "127.0.0.1:0", "--data-dir", dir)
	key2, err := os.ReadFile(keyPath)
	if err != nil || !bytes.Equal(key, key2) {
		t.Fatalf("dev.key changed on restart (err %v)", err)
	}
	if strings.Contains(again.stdout.String(), "ENVVAULT_TOKEN=") {
		t.Errorf("a second start printed a token again:\n%s", again.stdout.String())
	}
	c.base = again.url()
	var sec secretResp
	c.expect(http.StatusOK, "GET", "/v1/secrets/"+keepID, nil, &sec)
	if sec.Name != "KEEP" {
		t.Errorf("after restart read %+v", sec)
	}
	checkNoLeak(t, again, strings.TrimSpace(string(key)))
}

func TestServeSQLite(t *testing.T) {
	t.Parallel()
	testServe(t, nil, "--data-dir", t.TempDir())
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	url := testenv.RequirePostgres(t)
	testServe(t, map[string]string{"DATABASE_URL": url})
}

// testServe runs serve on a store (DATABASE_URL in env, or storeArgs), and
// checks migrate, user create, the API, a restart with another key and a
// key rotation.
func testServe(t *testing.T, env map[string]string, storeArgs ...string) {
	key1, key2 := seal.GenerateKey(), seal.GenerateKey()
	withEnv := func(kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range env {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	env1 := withEnv("ENCRYPTION_KEY", key1)
	serveArgs := append([]string{"serve", "--addr", "127.0.0.1:0"}, storeArgs...)

	mig := mustStart(t, env1, append([]string{"migrate"}, storeArgs...)...)
	if !regexp.MustCompile(`applied [1-9][0-9]* migrations`).MatchString(mig.stdout.String()) {
		t.Errorf("migrate printed %q, want how many it applied", mig.stdout.String())
	}
	mig = mustStart(t, env1, append([]string{"migrate"}, storeArgs...)...)
	if !strings.Contains(mig.stdout.String(), "up to date") {
		t.Errorf("second migrate printed %q, want up to date", mig.stdout.String())
	}

	token := createUser(t, env1, "ops", storeArgs...)
	srv := mustStart(t, env1, serveArgs...)
	c := &client{t: t, base: srv.url(), token: token}
	keepID := exerciseSecrets(t, c)
	var old secretResp
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "OLD", "value": canary + "-old"}, &old)

	// serve logs JSON, with a "listening" line giving the real address.
	var sawListening bool
	for _, line := range strings.Split(strings.TrimSpace(srv.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("serve logged a line that is not JSON: %q", line)
			continue
		}
		if rec["msg"] == "listening" && rec["addr"] == srv.m.Addr() {
			sawListening = true
		}
	}
	if !sawListening {
		t.Errorf("serve logged no listening line with addr %s:\n%s", srv.m.Addr(), srv.stderr.String())
	}
	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, srv, key1)

	// Another key: start-up stops with a clear message, naming no key.
	bad := mustFail(t, withEnv("ENCRYPTION_KEY", key2), "ENCRYPTION_KEY is not the key this database was sealed with", serveArgs...)
	checkNoLeak(t, bad, key1, key2)
	mustFail(t, withEnv("ENCRYPTION_KEY", key2), "ENCRYPTION_KEY is not the key this database was sealed with",
		append([]string{"user", "create", "eve"}, storeArgs...)...)

	// Rotation: the new key with the old one as previous opens everything.
	env2 := withEnv("ENCRYPTION_KEY", key2, "ENCRYPTION_KEY_PREVIOUS", key1)
	rot := mustStart(t, env2, serveArgs...)
	c.base = rot.url()
	var sec secretResp
	c.expect(http.StatusOK, "GET", "/v1/secrets/"+keepID, nil, &sec)
	c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+keepID, map[string]any{"value": canary + "-rotated"}, &sec)
	if err := rot.m.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, rot, key1, key2)

	// Without the previous key, start-up names what still needs it: OLD's
	// data key and those of KEEP's two kept versions are sealed under key1.
	mustFail(t, withEnv("ENCRYPTION_KEY", key2), "3 data keys are sealed under master key", serveArgs...)
	mustFail(t, withEnv("ENCRYPTION_KEY", key2), "ENCRYPTION_KEY_PREVIOUS", serveArgs...)
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 33))
	good := seal.GenerateKey()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(short+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing", map[string]string{}, "ENCRYPTION_KEY is required"},
		{"short", map[string]string{"ENCRYPTION_KEY": short}, "ENCRYPTION_KEY: key decodes to 16 bytes"},
		{"long", map[string]string{"ENCRYPTION_KEY": long}, "ENCRYPTION_KEY: key decodes to 33 bytes"},
		{"not base64", map[string]string{"ENCRYPTION_KEY": "not*base64*at*all"}, "ENCRYPTION_KEY: key is not valid base64"},
		{"file short", map[string]string{"ENCRYPTION_KEY_FILE": keyFile}, "ENCRYPTION_KEY: key decodes to 16 bytes"},
		{"file missing", map[string]string{"ENCRYPTION_KEY_FILE": keyFile + ".nope"}, "ENCRYPTION_KEY_FILE: open"},
		{"both", map[string]string{"ENCRYPTION_KEY": good, "ENCRYPTION_KEY_FILE": keyFile}, "both ENCRYPTION_KEY and ENCRYPTION_KEY_FILE are set"},
		{"previous short", map[string]string{"ENCRYPTION_KEY": good, "ENCRYPTION_KEY_PREVIOUS": seal.GenerateKey() + "," + short},
			"ENCRYPTION_KEY_PREVIOUS (key 2 of 2): key decodes to 16 bytes"},
		{"previous without current", map[string]string{"ENCRYPTION_KEY_PREVIOUS": good}, "ENCRYPTION_KEY is not"},
		{"previous same as current", map[string]string{"ENCRYPTION_KEY": good, "ENCRYPTION_KEY_PREVIOUS": good}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := mustFail(t, tc.env, tc.want, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
			for _, v := range tc.env {
				if v != keyFile && strings.Contains(in.output(), v) {
					t.Errorf("output shows a key:\n%s", in.output())
				}
			}
		})
	}
}

func TestServeKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(seal.GenerateKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ENCRYPTION_KEY_FILE": keyFile}
	token := createUser(t, env, "ops", "--data-dir", dir)
	srv := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
	(&client{t: t, base: srv.url(), token: token}).expect(http.StatusOK, "GET", "/v1/secrets", nil, nil)
	if !strings.Contains(srv.stderr.String(), `"source":"ENCRYPTION_KEY_FILE"`) {
		t.Errorf("serve did not log the key's source:\n%s", srv.stderr.String())
	}
}

func TestUserCreateWithoutKey(t *testing.T) {
	t.Parallel()
	// No ENCRYPTION_KEY and no dev.key: refused, naming both.
	mustFail(t, map[string]string{}, "ENCRYPTION_KEY is required", "user", "create", "alice", "--data-dir", t.TempDir())
	// The dev key is never used with PostgreSQL, even if there is one; and
	// dev itself never uses PostgreSQL.
	dir := t.TempDir()
	dev := mustStart(t, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/x"}, "dev", "--addr", "127.0.0.1:0", "--data-dir", dir)
	if !strings.Contains(dev.stderr.String(), "DATABASE_URL is ignored") {
		t.Errorf("dev with DATABASE_URL set did not warn that it ignores it:\n%s", dev.stderr.String())
	}
	mustFail(t, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/x"}, "ENCRYPTION_KEY is required",
		"user", "create", "alice", "--data-dir", dir)
}

func TestUserCreateText(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	in := mustStart(t, env, "user", "create", "--data-dir", t.TempDir(), "bob")
	out := in.stdout.String()
	if !regexp.MustCompile(`user id: usr_\S{21}\n`).MatchString(out) || !regexp.MustCompile(`token: +tok_\S+\n`).MatchString(out) {
		t.Errorf("user create printed:\n%s", out)
	}
	mustFail(t, env, "needs a NAME", "user", "create")
	mustFail(t, env, "takes one NAME", "user", "create", "a", "b")
}

func TestKeygen(t *testing.T) {
	t.Parallel()
	a := mustStart(t, nil, "keygen")
	b := mustStart(t, nil, "keygen")
	for _, in := range []*instance{a, b} {
		if _, err := seal.ParseKey(in.stdout.String()); err != nil {
			t.Errorf("keygen printed %q: %v", in.stdout.String(), err)
		}
	}
	if a.stdout.String() == b.stdout.String() {
		t.Error("keygen printed the same key twice")
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"dev", "--help"}, {"serve", "--help"}, {"migrate", "--help"},
		{"user", "create", "--help"}, {"keygen", "--help"}, {"runner", "--help"},
	} {
		in, err := start(t, nil, args...)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("envvault %v: error %v, want flag.ErrHelp", args, err)
		}
		if !strings.Contains(in.stdout.String(), "USAGE") {
			t.Errorf("envvault %v printed no usage:\n%s", args, in.stdout.String())
		}
	}
	in, _ := start(t, nil, "serve", "--help")
	for _, want := range []string{"-addr", "-data-dir", "-max-secrets", "-body-limit", "-log-format", "ENCRYPTION_KEY_FILE", "DATABASE_URL",
		"-baseline-env-file", "-locked-names", "BASELINE_LOCKED_NAMES", "-allow-names", "-worker-id", "-no-worker"} {
		if !strings.Contains(in.stdout.String(), want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
	in, _ = start(t, nil, "runner", "--help")
	for _, want := range []string{"-baseline-env-file", "-locked-names", "-worker-id", "DATABASE_URL", "DOCKER_HOST"} {
		if !strings.Contains(in.stdout.String(), want) {
			t.Errorf("runner --help does not mention %s", want)
		}
	}
	if strings.Contains(in.stdout.String(), "\n  --no-worker") || strings.Contains(in.stdout.String(), "\n  --addr") {
		t.Errorf("runner --help offers --no-worker or --addr:\n%s", in.stdout.String())
	}
	if _, err := start(t, nil); !errors.Is(err, errUsage) {
		t.Errorf("envvault without a command: %v, want errUsage", err)
	}
	mustFail(t, nil, `unknown command "bogus"`, "bogus")
	mustFail(t, nil, "takes no arguments", "serve", "extra")
}

func TestFlagsFromEnv(t *testing.T) {
	// ff reads flags' variables from the process environment: no Parallel.
	dir := t.TempDir()
	t.Setenv("DATA_DIR", dir)
	t.Setenv("ADDR", "127.0.0.1:0")
	t.Setenv("MAX_SECRETS", "1")
	dev := mustStart(t, nil, "dev")
	if dev.m.Config.DataDir != dir || dev.m.Config.MaxSecrets != 1 {
		t.Fatalf("config from env: %+v", dev.m.Config)
	}
	if _, err := os.Stat(filepath.Join(dir, "dev.key")); err != nil {
		t.Fatalf("DATA_DIR not used: %v", err)
	}
	token := regexp.MustCompile(`ENVVAULT_TOKEN=(\S+)`).FindStringSubmatch(dev.stdout.String())[1]
	c := &client{t: t, base: dev.url(), token: token}
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "ONE", "value": canary}, nil)
	c.expect(http.StatusConflict, "POST", "/v1/secrets", map[string]any{"name": "TWO", "value": canary}, nil)
	// A flag wins over its variable.
	other := t.TempDir()
	in := mustStart(t, nil, "migrate", "--data-dir", other)
	if in.m.Config.DataDir != other {
		t.Errorf("--data-dir %s lost to DATA_DIR: %s", other, in.m.Config.DataDir)
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	key := seal.GenerateKey()
	raw, err := seal.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{DatabaseURL: "postgres://u:hunter2@127.0.0.1:1/db", Keys: MasterKeys{Current: raw, Previous: [][]byte{raw}, Source: "ENCRYPTION_KEY"}}
	var b strings.Builder
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&b, f+"\n", c)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	b.Write(j)
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c, "keys", c.Keys, "url", c.DatabaseURL)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c, "keys", c.Keys, "url", c.DatabaseURL)
	out := b.String()
	for _, leak := range []string{"hunter2", key, string(raw), fmt.Sprint(raw), fmt.Sprintf("%x", raw), base64.StdEncoding.EncodeToString(raw)} {
		if strings.Contains(out, leak) {
			t.Fatalf("formatting Config shows a secret:\n%s", out)
		}
	}
}
