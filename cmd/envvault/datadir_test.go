package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envvault/envvault/seal"
)

// devArgs runs a development vault on dir without a worker.
func devArgs(dir string) []string {
	return []string{"dev", "--addr", "127.0.0.1:0", "--no-worker", "--data-dir", dir}
}

// wantMode fails unless path exists with exactly mode.
func wantMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s has mode %04o, want %04o", path, got, mode)
	}
}

// wantOwnerOnly checks the data directory and every file envvault keeps
// in it, all of which must exist.
func wantOwnerOnly(t *testing.T, dir string) {
	t.Helper()
	wantMode(t, dir, 0o700)
	for _, name := range append(sqliteFiles(), devKeyFile) {
		wantMode(t, filepath.Join(dir, name), 0o600)
	}
}

// A new data directory and its files are owner-only from the start,
// whatever the umask lets os.Create and SQLite give.
func TestDataDirCreatedOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustStart(t, map[string]string{}, devArgs(dir)...)
	wantOwnerOnly(t, dir)
}

// Loose modes left by an older version or a copy are tightened at start,
// and the log says so, naming each path.
func TestDataDirTightenedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := mustStart(t, map[string]string{}, devArgs(dir)...)
	if err := first.m.Close(); err != nil {
		t.Fatal(err)
	}
	loosen := map[string]fs.FileMode{dir: 0o755}
	for _, name := range append(sqliteFiles(), devKeyFile) {
		loosen[filepath.Join(dir, name)] = 0o644
	}
	// The -wal and -shm files outlive a clean close only sometimes: make
	// them, so that each is checked.
	for path, mode := range loosen {
		if path != dir {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, mode)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	again := mustStart(t, map[string]string{}, devArgs(dir)...)
	wantOwnerOnly(t, dir)
	log := again.stderr.String()
	for path := range loosen {
		if !strings.Contains(log, path) {
			t.Errorf("the log does not name %s, whose mode was tightened:\n%s", path, log)
		}
	}
}

// A data file whose mode cannot be changed (here: immutable, which even
// root cannot chmod; in real life, another owner or a read-only mount) is
// named in a start-up warning with its mode, and the vault starts anyway.
func TestDataDirUntightenableWarns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, devKeyFile)
	if err := os.WriteFile(key, []byte(seal.GenerateKey()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", key).CombinedOutput(); err != nil {
		msg := "chattr +i (e2fsprogs, as root on a file system with the immutable flag) is needed to make a file whose mode cannot change: " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", key).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", key, err, out)
		}
	})
	in := mustStart(t, map[string]string{}, devArgs(dir)...)
	wantMode(t, key, 0o644)
	var warning string
	for _, line := range strings.Split(in.stderr.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "path="+key) {
			warning = line
		}
	}
	if warning == "" {
		t.Fatalf("no warning names %s:\n%s", key, in.stderr.String())
	}
	if !strings.Contains(warning, "mode=0644") {
		t.Errorf("the warning does not say the mode 0644: %s", warning)
	}
	b, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(in.output(), strings.TrimSpace(string(b))) {
		t.Errorf("the key itself appears in the output")
	}
	wantMode(t, filepath.Join(dir, sqliteFile), 0o600)
}
