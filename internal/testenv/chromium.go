package testenv

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// ChromiumEnv names a variable that may hold the path (or the name, looked
// up in PATH) of the Chromium binary the browser tests drive.
const ChromiumEnv = "CHROMIUM"

// chromiumNames are looked up in PATH, in order, when ChromiumEnv is unset:
// Debian's package installs /usr/bin/chromium.
var chromiumNames = []string{"chromium", "chromium-browser"}

// RequireChromium returns the path of the system's Chromium, to be driven
// headless; tests never download a browser.
//
// If none is found, the test skips with a message saying so, or fails with
// CI=true: CI never passes by skipping the browser tests. A CHROMIUM that
// names no executable always fails: a broken setting is never hidden
// behind a skip.
func RequireChromium(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(ChromiumEnv); v != "" {
		path, err := exec.LookPath(v)
		if err != nil {
			t.Fatalf("%s=%q is not an executable Chromium: %v", ChromiumEnv, v, err)
		}
		return path
	}
	for _, name := range chromiumNames {
		path, err := exec.LookPath(name)
		if err == nil {
			return path
		}
		if !errors.Is(err, exec.ErrNotFound) {
			t.Fatalf("look up %s in PATH: %v", name, err)
		}
	}
	if CI() {
		t.Fatalf("Chromium is required in CI (CI=true) but neither %q nor %q is in PATH and %s is unset: install Debian's chromium package (apt-get install chromium)",
			chromiumNames[0], chromiumNames[1], ChromiumEnv)
	}
	t.Skipf("browser tests skipped: no Chromium (%q or %q in PATH, or %s=/path/to/chromium). "+
		"Install Debian's chromium package (apt-get install chromium); with CI=true this is a failure instead of a skip",
		chromiumNames[0], chromiumNames[1], ChromiumEnv)
	return ""
}
