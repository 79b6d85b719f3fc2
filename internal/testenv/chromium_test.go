package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// requireChromium calls RequireChromium on a fake in its own goroutine, as
// the testing package would.
func requireChromium(t *testing.T) (*dockerTB, string) {
	f := &dockerTB{TB: t}
	path := ""
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = RequireChromium(f)
	}()
	<-done
	return f, path
}

func TestRequireChromiumMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(ChromiumEnv, "")

	t.Setenv("CI", "")
	f, path := requireChromium(t)
	if path != "" || f.fatal != "" || !strings.Contains(f.skip, "no Chromium") || !strings.Contains(f.skip, "apt-get install chromium") ||
		!strings.Contains(f.skip, "CI=true") {
		t.Errorf("outside CI: returned %q, skip %q, fatal %q; want a skip saying what is missing", path, f.skip, f.fatal)
	}

	t.Setenv("CI", "true")
	f, path = requireChromium(t)
	if path != "" || f.skip != "" || !strings.Contains(f.fatal, "Chromium is required in CI (CI=true)") {
		t.Errorf("in CI: returned %q, skip %q, fatal %q; want a failure", path, f.skip, f.fatal)
	}
}

func TestRequireChromiumBadSetting(t *testing.T) {
	t.Setenv(ChromiumEnv, filepath.Join(t.TempDir(), "no-such-chromium"))
	t.Setenv("CI", "")
	f, path := requireChromium(t)
	if path != "" || f.skip != "" || !strings.Contains(f.fatal, ChromiumEnv) {
		t.Errorf("returned %q, skip %q, fatal %q; want a failure: a bad setting is a broken install", path, f.skip, f.fatal)
	}
}

func TestRequireChromiumFromEnv(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "my-chromium")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ChromiumEnv, fake)
	f, path := requireChromium(t)
	if path != fake || f.fatal != "" || f.skip != "" {
		t.Errorf("returned %q, skip %q, fatal %q; want %q", path, f.skip, f.fatal, fake)
	}
	t.Setenv(ChromiumEnv, "")
	t.Setenv("PATH", dir)
	if err := os.Rename(fake, filepath.Join(dir, "chromium")); err != nil {
		t.Fatal(err)
	}
	f, path = requireChromium(t)
	if path != filepath.Join(dir, "chromium") || f.fatal != "" || f.skip != "" {
		t.Errorf("from PATH: returned %q, skip %q, fatal %q", path, f.skip, f.fatal)
	}
}
