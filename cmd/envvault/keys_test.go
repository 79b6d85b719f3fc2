package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// keysStatusJSON is what `keys status --json` prints.
type keysStatusJSON struct {
	Current string `json:"current"`
	Keys    []struct {
		KeyID    string `json:"key_id"`
		Role     string `json:"role"`
		DataKeys int    `json:"data_keys"`
		CanDrop  bool   `json:"can_drop"`
	} `json:"keys"`
}

// keysStatus runs `keys status --json` and returns the data keys per key
// id and role ("current", "previous", "unknown"), and which can be dropped.
func keysStatus(t *testing.T, env map[string]string, storeArgs ...string) (counts map[string]int, roles map[string]string, canDrop []string) {
	t.Helper()
	in := mustStart(t, env, append([]string{"keys", "status", "--json"}, storeArgs...)...)
	var st keysStatusJSON
	if err := json.Unmarshal([]byte(in.stdout.String()), &st); err != nil {
		t.Fatalf("keys status --json printed %q: %v", in.stdout.String(), err)
	}
	counts, roles = map[string]int{}, map[string]string{}
	for _, k := range st.Keys {
		counts[k.KeyID], roles[k.KeyID] = k.DataKeys, k.Role
		if k.CanDrop {
			canDrop = append(canDrop, k.KeyID)
		}
	}
	if roles[st.Current] != "current" {
		t.Errorf("keys status: current %s is not listed as current: %s", st.Current, in.stdout.String())
	}
	return counts, roles, canDrop
}

func keyIDOf(t *testing.T, encoded string) string {
	t.Helper()
	k, err := seal.ParseKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	return seal.KeyID(k)
}

func TestKeysRotateSQLite(t *testing.T) {
	t.Parallel()
	testKeysRotate(t, nil, "--data-dir", t.TempDir())
}

func TestKeysRotatePostgres(t *testing.T) {
	t.Parallel()
	url := testenv.RequirePostgres(t)
	testKeysRotate(t, map[string]string{"DATABASE_URL": url})
}

// TestKeysRotatePostgresServiceRole is the rotation as production runs it:
// serve and keys rotate connect as the service role, which row-level
// security applies to; the owner migrates.
func TestKeysRotatePostgresServiceRole(t *testing.T) {
	t.Parallel()
	roles := testenv.RequirePostgresRoles(t)
	testKeysRotate(t, map[string]string{"DATABASE_URL": roles.Service, "DATABASE_MIGRATE_URL": roles.Owner})
}

// testKeysRotate follows the README's rotation on a store: serve with key1;
// serve with key2 and key1 as previous; keys rotate while it serves; keys
// status; serve with key2 alone.
func testKeysRotate(t *testing.T, env map[string]string, storeArgs ...string) {
	key1, key2 := seal.GenerateKey(), seal.GenerateKey()
	id1, id2 := keyIDOf(t, key1), keyIDOf(t, key2)
	withEnv := func(kv ...string) map[string]string {
		out := maps.Clone(env)
		if out == nil {
			out = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	env1 := withEnv("ENCRYPTION_KEY", key1)
	env2 := withEnv("ENCRYPTION_KEY", key2, "ENCRYPTION_KEY_PREVIOUS", key1)
	env3 := withEnv("ENCRYPTION_KEY", key2)
	serveArgs := append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker"}, storeArgs...)
	var all []*instance
	run := func(env map[string]string, args ...string) *instance {
		t.Helper()
		in := mustStart(t, env, args...)
		all = append(all, in)
		return in
	}
	defer func() {
		for _, in := range all {
			checkNoLeak(t, in, key1, key2)
		}
	}()

	// 20 secrets under key1, 3 of them with a second value (3 kept
	// versions).
	token := createUser(t, env1, "ops", storeArgs...)
	srv := run(env1, serveArgs...)
	c := &client{t: t, base: srv.url(), token: token}
	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": "p", "image": "alpine:3"}, &prof)
	var ids []string
	for i := range 20 {
		body := map[string]any{"name": fmt.Sprintf("S%02d", i), "value": fmt.Sprintf("%s-%d", canary, i)}
		if i%2 == 1 {
			body["scope"], body["profile_ids"] = "agents", []string{prof.ID}
		}
		var sec secretResp
		c.expect(http.StatusCreated, "POST", "/v1/secrets", body, &sec)
		ids = append(ids, sec.ID)
	}
	for _, id := range ids[:3] {
		c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+id, map[string]any{"value": canary + "-second"}, nil)
	}
	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}
	if counts, _, _ := keysStatus(t, env1, storeArgs...); !maps.Equal(counts, map[string]int{id1: 23}) {
		t.Errorf("keys status before: %v, want %s: 23", counts, id1)
	}

	// Step 2: serve with the new key, the old one previous. A new value
	// is sealed under key2 (and its old value kept under key1).
	srv = run(env2, serveArgs...)
	c.base = srv.url()
	c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+ids[5], map[string]any{"value": canary + "-new"}, nil)
	counts, roles, canDrop := keysStatus(t, env2, storeArgs...)
	if !maps.Equal(counts, map[string]int{id1: 23, id2: 1}) || roles[id1] != "previous" || len(canDrop) != 0 {
		t.Errorf("keys status with key2 current: %v %v, can drop %v", counts, roles, canDrop)
	}

	// Step 3: rotate while it serves.
	rot := run(env2, append([]string{"keys", "rotate", "--batch-size", "7"}, storeArgs...)...)
	out := rot.stdout.String()
	for _, want := range []string{
		"Re-wrapping data keys under master key " + id2,
		"23 data keys to re-wrap",
		"re-wrapped 7 of 23 data keys",
		"re-wrapped 23 of 23 data keys (100%)",
		"Done: rotated 23, already current 1, took ",
		"The previous keys (" + id1 + ") can be dropped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("keys rotate printed no %q:\n%s", want, out)
		}
	}
	// The server never stopped: it still answers, under either key.
	c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+ids[7], map[string]any{"name": "RENAMED_WHILE_SERVING"}, nil)

	// Step 4: status says key1 can go.
	counts, roles, canDrop = keysStatus(t, env2, storeArgs...)
	if !maps.Equal(counts, map[string]int{id1: 0, id2: 24}) || roles[id1] != "previous" || len(canDrop) != 1 || canDrop[0] != id1 {
		t.Errorf("keys status after rotation: %v %v, can drop %v; want %s: 0 droppable", counts, roles, canDrop, id1)
	}
	st := run(env2, append([]string{"keys", "status"}, storeArgs...)...)
	if want := "Master key " + id1 + " seals no data key: it can be dropped"; !strings.Contains(st.stdout.String(), want) {
		t.Errorf("keys status printed no %q:\n%s", want, st.stdout.String())
	}
	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}

	// Step 5: the new key alone. Start-up checks every data key's master
	// key; a rename opens each value's data key.
	srv = run(env3, serveArgs...)
	c.base = srv.url()
	for i, id := range ids {
		c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+id, map[string]any{"name": fmt.Sprintf("AFTER_%02d", i)}, nil)
	}
	st = run(env3, append([]string{"keys", "status"}, storeArgs...)...)
	if want := "Every data key is sealed under the current master key " + id2; !strings.Contains(st.stdout.String(), want) {
		t.Errorf("keys status with key2 alone printed no %q:\n%s", want, st.stdout.String())
	}
	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}
	// The old key alone no longer fits: its key check is gone.
	mustFail(t, env1, "ENCRYPTION_KEY is not the key this database was sealed with", serveArgs...)
}

// seedSQLite makes the SQLite store of dataDir with users of perUser
// secrets each (half `all`, half `agents` granting the user's profile
// "p"), sealed under key, and returns each user's id, profile id and
// expected env.
func seedSQLite(t *testing.T, dataDir, key string, users, perUser int) []seededUser {
	t.Helper()
	ctx := t.Context()
	db, keys, svc := sqliteService(t, dataDir, key)
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.CheckKeys(ctx); err != nil {
		t.Fatal(err)
	}
	var out []seededUser
	for u := range users {
		user, _, err := svc.CreateUser(ctx, fmt.Sprintf("user%d", u))
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.CreateProfile(ctx, user.ID, vault.ProfileInput{Name: "p", Image: "alpine:3"})
		if err != nil {
			t.Fatal(err)
		}
		su := seededUser{id: user.ID, profile: p.ID, env: map[string]string{}}
		// One transaction per user, sealed as CreateSecret seals.
		err = db.Update(ctx, user.ID, func(tx vault.Tx) error {
			for i := range perUser {
				sec := &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: user.ID, Name: fmt.Sprintf("S%05d", i),
					Scope: vault.ScopeAll, Version: 1, CreatedAt: user.CreatedAt, UpdatedAt: user.CreatedAt}
				if i%2 == 1 {
					sec.Scope, sec.ProfileIDs = vault.ScopeAgents, []string{p.ID}
				}
				v := fmt.Sprintf("%s-%d-%d", canary, u, i)
				if err := vault.SealSecret(keys, sec, v); err != nil {
					return err
				}
				if err := tx.CreateSecret(ctx, sec); err != nil {
					return err
				}
				su.env[sec.Name] = v
			}
			return nil
		})
		if err != nil {
			t.Fatalf("seed secrets: %v", err)
		}
		out = append(out, su)
	}
	return out
}

type seededUser struct {
	id, profile string
	env         map[string]string
}

// checkSeeded checks, with key alone, that the store of dataDir passes
// start-up and that every seeded user's env is as seeded.
func checkSeeded(t *testing.T, dataDir, key string, seeded []seededUser) {
	t.Helper()
	ctx := t.Context()
	db, _, svc := sqliteService(t, dataDir, key)
	defer db.Close()
	if err := svc.CheckKeys(ctx); err != nil {
		t.Fatalf("start-up with the new key alone: %v", err)
	}
	for _, su := range seeded {
		env, err := svc.GetDecryptedForProfile(ctx, su.id, su.profile)
		if err != nil {
			t.Fatalf("env under the new key alone: %v", err)
		}
		if !maps.Equal(env, su.env) {
			t.Errorf("env of %s under the new key alone: %d names, want %d (or other values)", su.id, len(env), len(su.env))
		}
	}
}

// onWrite is a testenv.SyncBuffer that calls fn, once, after the first write
// containing match.
type onWrite struct {
	testenv.SyncBuffer
	match string
	once  sync.Once
	fn    func()
}

func (w *onWrite) Write(p []byte) (int, error) {
	n, err := w.SyncBuffer.Write(p)
	if strings.Contains(string(p), w.match) {
		w.once.Do(w.fn)
	}
	return n, err
}

// TestKeysRotateInterrupted is Ctrl-C (the context main cancels on
// SIGINT) during keys rotate: it stops after the batch in flight, says how
// to resume, and a second run completes.
func TestKeysRotateInterrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key1, key2 := seal.GenerateKey(), seal.GenerateKey()
	seeded := seedSQLite(t, dir, key1, 2, 100)
	env := map[string]string{"ENCRYPTION_KEY": key2, "ENCRYPTION_KEY_PREVIOUS": key1}
	args := []string{"keys", "rotate", "--batch-size", "10", "--data-dir", dir}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := &onWrite{match: "re-wrapped", fn: cancel}
	m := &Main{Stdout: stdout, Stderr: &testenv.SyncBuffer{}, Getenv: func(k string) string { return env[k] }}
	t.Cleanup(func() { m.Close() })
	if err := m.ParseFlags(ctx, args); err != nil {
		t.Fatal(err)
	}
	err := m.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "run `envvault keys rotate` again") || !strings.Contains(err.Error(), "190 data keys") {
		t.Fatalf("interrupted keys rotate: %v; want how to resume and the 190 left", err)
	}
	if want := "Interrupted after the batch in flight: rotated 10 of 200"; !strings.Contains(stdout.String(), want) {
		t.Errorf("interrupted keys rotate printed no %q:\n%s", want, stdout.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	counts, _, _ := keysStatus(t, env, "--data-dir", dir)
	if want := map[string]int{keyIDOf(t, key1): 190, keyIDOf(t, key2): 10}; !maps.Equal(counts, want) {
		t.Errorf("after the interruption: %v, want %v", counts, want)
	}

	again := mustStart(t, env, args...)
	if want := "Done: rotated 190, already current 10"; !strings.Contains(again.stdout.String(), want) {
		t.Errorf("second keys rotate printed no %q:\n%s", want, again.stdout.String())
	}
	checkNoLeak(t, again, key1, key2)
	checkSeeded(t, dir, key2, seeded)
}

// TestKeysRotateKilled runs the binary: SIGINT stops it after a batch with
// exit status 1 and how to resume; SIGKILL halfway loses nothing; a last
// run completes.
func TestKeysRotateKilled(t *testing.T) {
	t.Parallel()
	bin := staticBinary(t)
	dir := t.TempDir()
	key1, key2 := seal.GenerateKey(), seal.GenerateKey()
	id1, id2 := keyIDOf(t, key1), keyIDOf(t, key2)
	const total = 3000
	seeded := seedSQLite(t, dir, key1, 3, total/3)
	env := map[string]string{"ENCRYPTION_KEY": key2, "ENCRYPTION_KEY_PREVIOUS": key1}

	// start runs keys rotate with batches of one, so that it is still
	// running when the first progress line comes.
	start := func() (*exec.Cmd, *lineWatcher, *testenv.SyncBuffer) {
		cmd := exec.Command(bin, "keys", "rotate", "--batch-size", "1", "--data-dir", dir)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ENCRYPTION_KEY=" + key2, "ENCRYPTION_KEY_PREVIOUS=" + key1}
		stderr := &testenv.SyncBuffer{}
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		lines := watchLines(out)
		lines.await(t, "a progress line", func(l string) bool { return strings.HasPrefix(l, "re-wrapped ") })
		return cmd, lines, stderr
	}
	rotated := func() int {
		counts, _, _ := keysStatus(t, env, "--data-dir", dir)
		if counts[id1]+counts[id2] != total {
			t.Fatalf("data keys %v, want %d in all", counts, total)
		}
		return counts[id2]
	}

	cmd, lines, stderr := start()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("keys rotate after SIGINT: %v, want exit status 1\n%s\n%s", err, lines, stderr)
	}
	<-lines.done
	if !strings.Contains(stderr.String(), "run `envvault keys rotate` again") || !strings.Contains(lines.String(), "Interrupted after the batch in flight") {
		t.Errorf("keys rotate after SIGINT printed:\n%s\n%s", lines, stderr)
	}
	afterINT := rotated()
	if afterINT == 0 || afterINT == total {
		t.Fatalf("SIGINT after the first progress line left %d of %d rotated, want some but not all", afterINT, total)
	}

	cmd, lines, stderr = start()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	afterKill := rotated()
	if afterKill <= afterINT || afterKill == total {
		t.Fatalf("SIGKILL after the first progress line left %d of %d rotated (%d before), want more but not all\n%s\n%s", afterKill, total, afterINT, lines, stderr)
	}
	t.Logf("rotated after SIGINT: %d, after SIGKILL: %d of %d", afterINT, afterKill, total)

	last := exec.Command(bin, "keys", "rotate", "--data-dir", dir)
	last.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ENCRYPTION_KEY=" + key2, "ENCRYPTION_KEY_PREVIOUS=" + key1}
	outb, err := last.CombinedOutput()
	if err != nil {
		t.Fatalf("last keys rotate: %v\n%s", err, outb)
	}
	if want := fmt.Sprintf("Done: rotated %d, already current %d", total-afterKill, afterKill); !strings.Contains(string(outb), want) {
		t.Errorf("last keys rotate printed no %q:\n%s", want, outb)
	}
	for _, secret := range []string{canary, key1, key2} {
		if strings.Contains(string(outb)+lines.String()+stderr.String(), secret) {
			t.Errorf("keys rotate printed a value or a key")
		}
	}
	checkSeeded(t, dir, key2, seeded)
}

// TestKeysUnknownMasterKey: data keys under a key that is configured
// nowhere. status lists it as unknown with its count; rotate and serve
// refuse, naming it and the count.
func TestKeysUnknownMasterKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key1, key2 := seal.GenerateKey(), seal.GenerateKey()
	id1 := keyIDOf(t, key1)
	seedSQLite(t, dir, key1, 1, 12)
	// key2 served once beside key1, so its key check exists and opens.
	both := map[string]string{"ENCRYPTION_KEY": key2, "ENCRYPTION_KEY_PREVIOUS": key1}
	mustStart(t, both, "user", "create", "ops", "--data-dir", dir)

	only2 := map[string]string{"ENCRYPTION_KEY": key2}
	counts, roles, _ := keysStatus(t, only2, "--data-dir", dir)
	if counts[id1] != 12 || roles[id1] != "unknown" {
		t.Errorf("keys status without key1: %v %v; want %s unknown with 12", counts, roles, id1)
	}
	st := mustStart(t, only2, "keys", "status", "--data-dir", dir)
	if want := "Master key " + id1 + " seals 12 data keys but is not configured"; !strings.Contains(st.stdout.String(), want) {
		t.Errorf("keys status printed no %q:\n%s", want, st.stdout.String())
	}
	want := fmt.Sprintf("12 data keys are sealed under master key %s, which is not configured: add it to ENCRYPTION_KEY_PREVIOUS", id1)
	for _, args := range [][]string{
		{"keys", "rotate", "--data-dir", dir},
		{"serve", "--addr", "127.0.0.1:0", "--no-worker", "--data-dir", dir},
	} {
		in := mustFail(t, only2, want, args...)
		checkNoLeak(t, in, key1, key2)
	}
}

func TestKeysFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	mustFail(t, env, "--batch-size must be at least 1", "keys", "rotate", "--batch-size", "0", "--data-dir", t.TempDir())
	mustFail(t, env, `unknown command "keys nope"`, "keys", "nope")
	mustFail(t, env, "takes no arguments", "keys", "status", "extra", "--data-dir", t.TempDir())
	mustFail(t, map[string]string{}, "ENCRYPTION_KEY is required", "keys", "status", "--data-dir", t.TempDir())
	in := mustStart(t, env, "keys", "rotate", "--data-dir", t.TempDir())
	if !regexp.MustCompile(`Nothing to rotate: all 0 data keys are sealed under master key [0-9a-f]{8} already`).MatchString(in.stdout.String()) {
		t.Errorf("keys rotate on an empty store printed:\n%s", in.stdout.String())
	}
}
