package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/envvault/envvault/internal/dotenv"
	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/vault"
)

// composeFile is a .env file written for docker compose's env_file: inline
// comments, export, spaces around =, quotes inside quotes, a comment after
// a closing quote and a multi-line PEM key in each kind of quote.
const composeFile = `# written for docker compose
API_URL=https://x.example # production
export DB_USER = app
QUOTED='a # b' # note
JSON="{\"k\": \"it's\"}" # trailing
KEY="-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASC
lHRucQ+Fe7L5fExgBtkNqjUCAwEAAQ==
-----END PRIVATE KEY-----"
SINGLE_KEY='-----BEGIN PUBLIC KEY-----
AAAA\n literal
-----END PUBLIC KEY-----'
NL="l1\nl2"
`

// TestComposeEnvFile imports a compose-style file and checks that a task's
// container holds, for each of its names, exactly the value docker-compose
// gives its container for the same env_file.
func TestComposeEnvFile(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if testenv.CI() {
			t.Fatal("docker-compose (Debian's docker-compose package) is required in CI (CI=true) but is not on PATH")
		}
		t.Skip("docker-compose (Debian's docker-compose package) is not on PATH; install it to compare with compose's env_file")
	}
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	entries, err := dotenv.Parse([]byte(composeFile))
	if err != nil {
		t.Fatal(err)
	}
	in := make([]vault.ImportEntry, len(entries))
	for i, e := range entries {
		in[i] = vault.ImportEntry{Line: e.Line, Name: e.Name, Value: e.Value}
	}
	if _, err := f.svc.ImportSecrets(ctx, f.user, in, vault.ScopeAll, nil); err != nil {
		t.Fatal(err)
	}
	o := f.orch("w-"+vault.NewID(""), nil)
	f.run(o)
	task := f.create(o, f.profile(f.envImage, testimage.EnvProbe, "print", "up", "--", "sleep", "forever"))
	running := f.await(task.ID, "running", isRunning, o)
	ours := envMap(t, execOutput(t, f, running.ContainerID, testimage.EnvProbe, "pid1envjson"))
	theirs := envMap(t, composeRun(t, bin, f.envImage))
	if len(entries) != 7 {
		t.Fatalf("parsed %d entries, want 7", len(entries))
	}
	for _, e := range entries {
		got, ok := ours[e.Name]
		want, wok := theirs[e.Name]
		if !ok || !wok || got != want {
			t.Errorf("%s: task has %q (set %v), docker-compose gives %q (set %v)", e.Name, got, ok, want, wok)
		}
	}
	if !strings.Contains(theirs["KEY"], "\nMIIEvQ") || theirs["API_URL"] != "https://x.example" {
		t.Errorf("docker-compose's container did not get the file as expected: %q", theirs)
	}
}

// composeRun runs the probe under docker-compose with the file as its
// env_file and returns what the probe printed.
func composeRun(t *testing.T, bin, image string) []byte {
	t.Helper()
	dir := t.TempDir()
	yml := "version: \"3\"\nservices:\n  probe:\n    image: " + image + "\n    command: [\"" + testimage.EnvProbe + "\", \"envjson\"]\n    env_file: app.env\n"
	for name, text := range map[string]string{"app.env": composeFile, "docker-compose.yml": yml} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	project := "envvault" + strings.ToLower(vault.NewID(""))
	project = strings.Map(func(r rune) rune {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			return r
		}
		return -1
	}, project)
	compose := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-p", project}, args...)...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Logf("docker-compose %v: %s", args, stderr.String())
		}
		return out, err
	}
	t.Cleanup(func() { _, _ = compose("down") })
	out, err := compose("run", "--rm", "-T", "probe")
	if err != nil {
		t.Fatalf("docker-compose run: %v", err)
	}
	return out
}

// execOutput runs argv in a running container and returns its stdout.
func execOutput(t *testing.T, f *fixture, id string, argv ...string) []byte {
	t.Helper()
	ctx := context.Background()
	created, err := f.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v: %v", argv, err)
	}
	att, err := f.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v: %v", argv, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatalf("exec %v: %v", argv, err)
	}
	return stdout.Bytes()
}

// envMap decodes the probe's envjson output.
func envMap(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var lines []string
	if err := json.Unmarshal(bytes.TrimSpace(out), &lines); err != nil {
		t.Fatalf("envjson output (%d bytes): %v", len(out), err)
	}
	env := map[string]string{}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, "=")
		env[name] = value
	}
	return env
}
