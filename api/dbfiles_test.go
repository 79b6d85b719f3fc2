package api

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dbFiles reads the SQLite database at path and its side files (-wal,
// -shm, -journal) for a scan for plaintext values. So that an empty scan
// cannot pass, it fails unless the main file is there and is an SQLite
// database, and unless the files hold each of stored: text the store keeps
// in plaintext (ids, names), which shows the scan reads the stored rows.
func dbFiles(t *testing.T, path string, stored ...string) map[string]string {
	t.Helper()
	matches, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatalf("glob %s*: %v", path, err)
	}
	if !slices.Contains(matches, path) {
		t.Fatalf("the database file %s is missing (found %v)", path, matches)
	}
	files := make(map[string]string, len(matches))
	var all strings.Builder
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
		all.Write(b)
	}
	if main := files[path]; !strings.HasPrefix(main, "SQLite format 3\x00") {
		t.Fatalf("%s is not an SQLite database (%d bytes)", path, len(main))
	}
	for _, s := range stored {
		if !strings.Contains(all.String(), s) {
			t.Fatalf("the database files %v do not hold %q: the scan would not see the stored rows", matches, s)
		}
	}
	return files
}
