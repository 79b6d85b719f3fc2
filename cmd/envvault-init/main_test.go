package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/runner/envblock"
)

const canary = "canary-0b9f3a1d-secret"

// run runs the built init with args and stdin, its env only BASE=1 and
// PATH, and returns its exit code, stdout and stderr.
func run(t *testing.T, init string, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(init, args...)
	cmd.Env = []string{"BASE=1", "KEEP=image", "PATH=/usr/bin:/bin"}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func TestInit(t *testing.T) {
	init := testimage.Init(t)
	block, err := envblock.Encode(map[string]string{"TOKEN": canary, "KEEP": "block", "MULTI": "a\nb"})
	if err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, init, block, "--", "env")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, line := range []string{"BASE=1", "KEEP=block", "TOKEN=" + canary, "MULTI=a\nb", "PATH=/usr/bin:/bin"} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("env lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "KEEP=image") {
		t.Errorf("the block did not replace the engine's KEEP:\n%s", out)
	}

	// The command is exec'd: its PID is the init's, and its argv alone.
	code, out, _ = run(t, init, block, "--", "sh", "-c", `echo $$; tr '\0' ' ' < /proc/$$/cmdline`, "x")
	if code != 0 || !strings.Contains(out, "sh -c") || strings.Contains(out, "envvault-init") {
		t.Errorf("exit %d, out %q: want the shell's own command line", code, out)
	}

	file := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(file, block, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t, init, nil, "-f", file, "--", "sh", "-c", `echo "$TOKEN"`)
	if code != 0 || out != canary+"\n" {
		t.Errorf("-f: exit %d, out %q", code, out)
	}

	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
		code  int
		says  string
	}{
		{"no block", nil, []string{"--", "env"}, 125, "length"},
		{"short block", block[:len(block)-3], []string{"--", "env"}, 125, "ended after"},
		{"oversized length", []byte{0xff, 0xff, 0xff, 0xff}, []string{"--", "env"}, 125, "more than"},
		{"no command", block, []string{"--"}, 125, "usage"},
		{"no --", block, []string{"env"}, 125, "usage"},
		{"not found", block, []string{"--", "no-such-command-x"}, 127, "not found in PATH"},
		{"missing path", block, []string{"--", "/no/such"}, 127, "exec /no/such"},
		{"not executable", block, []string{"--", "/etc/hostname"}, 126, "exec /etc/hostname"},
		{"bad timeout", block, []string{"-t", "soon", "--", "env"}, 125, "usage"},
		{"unknown flag", block, []string{"-x", "y", "--", "env"}, 125, "usage"},
	} {
		code, out, stderr := run(t, init, tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.says) || out != "" {
			t.Errorf("%s: exit %d, stderr %q, out %q; want %d saying %q", tc.name, code, stderr, out, tc.code, tc.says)
		}
		if strings.Contains(stderr, canary) {
			t.Errorf("%s: stderr holds the value", tc.name)
		}
	}
}

// TestInitTimeout: an init whose stdin stays open without a block gives up
// after its timeout (ReadTimeout, 60 s, unless -t).
func TestInitTimeout(t *testing.T) {
	init := testimage.Init(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	cmd := exec.Command(init, "-t", "200ms", "--", "env")
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(stderr.String(), "no env block within 200ms") {
		t.Fatalf("%v, stderr %q; want exit 125 saying no env block within 200ms", err, stderr.String())
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("gave up after %v, before its timeout", time.Since(start))
	}
}
