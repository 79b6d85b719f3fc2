package runner_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"

	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/runner/envblock"
)

// setupStdin is setup with a runner that has an init of its own.
func setupStdin(t *testing.T) *env {
	t.Helper()
	e := setup(t, runner.Options{})
	e.r = testimage.NewRunner(t, e.cli, runner.Options{})
	return e
}

// stdinSpec is e.spec with stdin delivery.
func (e *env) stdinSpec(t *testing.T, image string, cmd ...string) runner.Spec {
	s := e.spec(t, image, cmd...)
	s.EnvDelivery = runner.DeliveryStdin
	return s
}

func TestStdinEnvArrivesExactly(t *testing.T) {
	e := setupStdin(t)
	spec := e.stdinSpec(t, e.image, testimage.EnvProbe, "envjson")
	spec.Env = trickyEnv()
	spec.Env["PATH"] = "/custom/bin:/bin" // replaces the engine's, as with env delivery
	code, logs := e.run(t, spec)
	if code != 0 {
		t.Fatalf("exit code %d; logs:\n%s", code, logs)
	}
	var inside []string
	if err := json.Unmarshal([]byte(logs), &inside); err != nil {
		t.Fatalf("probe output %q: %v", logs, err)
	}
	checkEnv(t, "inside the container", inside, spec.Env)

	id := e.start(t, spec)
	inspected, err := e.r.Env(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(inspected) == 0 {
		t.Fatal("docker inspect shows no env at all: expected the engine's own (PATH)")
	}
	// Only what the engine adds: no name of the spec, let alone a value.
	checkEnv(t, "docker inspect", inspected, map[string]string{})
}

// TestStdinKeepsValuesOutOfInspect runs a FROM scratch image and busybox
// with setup commands, and checks that the canary reached the process
// while it is absent from docker inspect, from the engine's directory of
// the container on disk and from PID 1's command line.
func TestStdinKeepsValuesOutOfInspect(t *testing.T) {
	e := setupStdin(t)
	for _, tc := range []struct {
		name, image, probe string
		setup              []string
		wantSetup          string
	}{
		{"FROM scratch", e.image, testimage.EnvProbe, nil, ""},
		{"busybox with setup commands", e.shell, testimage.ShellProbe,
			[]string{"echo setup saw ${#CANARY} bytes", "export FROM_SETUP=yes"}, "setup saw 22 bytes\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.stdinSpec(t, tc.image, tc.probe, "base64", "CANARY", "--", "cmdline", "--", "echo", "FROM_SETUP")
			spec.SetupCommands = tc.setup
			spec.Hardening = runner.Hardening{ReadOnlyRootfs: true, PidsLimit: 64, MemoryBytes: 64 << 20}
			id := e.start(t, spec)
			code, err := e.r.Wait(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			logs := e.logs(t, id)
			fromSetup := "<unset>"
			if tc.setup != nil {
				fromSetup = "yes"
			}
			want := tc.wantSetup + base64.StdEncoding.EncodeToString([]byte(canary)) + "\n" +
				base64.RawStdEncoding.EncodeToString([]byte(canary)) + "\n" +
				base64.URLEncoding.EncodeToString([]byte(canary)) + "\n" +
				base64.RawURLEncoding.EncodeToString([]byte(canary)) + "\n" +
				tc.probe + " base64 CANARY -- cmdline -- echo FROM_SETUP\n" + fromSetup + "\n"
			if code != 0 || logs != want {
				t.Fatalf("exit %d, logs:\n%s\nwant 0 and:\n%s", code, logs, want)
			}
			checkInspect(t, e, id, spec)
			checkEngineDir(t, e, id, spec.TaskID)
		})
	}
}

// checkInspect checks that the engine's configuration of a stdin-delivery
// container holds the hardening and the init, and no value.
func checkInspect(t *testing.T, e *env, id string, spec runner.Spec) {
	t.Helper()
	c, raw, err := e.cli.ContainerInspectWithRaw(t.Context(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(spec.TaskID)) || !bytes.Contains(raw, []byte(id)) {
		t.Fatalf("docker inspect of %s does not name the container and its task: not what it claims", id)
	}
	if bytes.Contains(raw, []byte(canary)) {
		t.Errorf("docker inspect holds the canary")
	}
	if !slices.Equal(c.Config.Entrypoint, []string{runner.InitProgram, "--"}) || !c.Config.OpenStdin || !c.Config.StdinOnce {
		t.Errorf("entrypoint %q, open stdin %t once %t: want the init, stdin open once", c.Config.Entrypoint, c.Config.OpenStdin, c.Config.StdinOnce)
	}
	h := c.HostConfig
	if !slices.Equal(h.CapDrop, []string{"ALL"}) || !slices.Contains(h.SecurityOpt, "no-new-privileges:true") || !h.ReadonlyRootfs || h.Privileged || len(h.Binds) > 0 {
		t.Errorf("hardening lost: cap drop %q, security %q, read-only %t, privileged %t, binds %q", h.CapDrop, h.SecurityOpt, h.ReadonlyRootfs, h.Privileged, h.Binds)
	}
	if len(h.Mounts) != 1 || h.Mounts[0].Type != mount.TypeVolume || !h.Mounts[0].ReadOnly || h.Mounts[0].Target != runner.InitDir {
		t.Errorf("mounts %+v: want only the init's volume, read-only at %s", h.Mounts, runner.InitDir)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].RW {
		t.Errorf("mount points %+v: want one, read-only", c.Mounts)
	}
}

// checkEngineDir reads every file of the engine's directory of the
// container (config.v2.json, hostconfig.json, its log, …), first checking
// that it is the container's, and fails if one holds the canary.
func checkEngineDir(t *testing.T, e *env, id, taskID string) {
	t.Helper()
	info, err := e.cli.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(info.DockerRootDir, "containers", id)
	cfg, err := os.ReadFile(filepath.Join(dir, "config.v2.json"))
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) && os.Geteuid() != 0 {
		t.Skipf("the engine's directory %s cannot be read by this user: %v", dir, err)
	}
	if err != nil {
		t.Fatalf("the engine's config of the container: %v", err)
	}
	if !bytes.Contains(cfg, []byte(id)) || !bytes.Contains(cfg, []byte(taskID)) || !bytes.Contains(cfg, []byte(runner.InitProgram)) {
		t.Fatalf("%s/config.v2.json does not name the container, its task and the init: not what it claims", dir)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the canary", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 { // config.v2.json, hostconfig.json, the json log at least
		t.Fatalf("only %d files in %s", files, dir)
	}
}

// TestStdinBlockLimit: an env of envblock.MaxSize bytes arrives whole; one
// byte more is refused before any container exists, naming the limit.
func TestStdinBlockLimit(t *testing.T) {
	e := setupStdin(t)
	env := map[string]string{}
	size := 0
	for i := 0; size < envblock.MaxSize; i++ {
		name := "V" + string(rune('0'+i))
		n := min(120_000, envblock.MaxSize-size-len(name)-2)
		env[name] = strings.Repeat("x", n)
		size += len(name) + n + 2
	}
	spec := e.stdinSpec(t, e.shell, "/bin/sh", "-c", `n=0; for v in $(env | grep '^V[0-9]=' | cut -d= -f1); do eval "n=\$((n + ${#v} + \${#$v} + 2))"; done; echo $n`)
	spec.Env = env
	code, logs := e.run(t, spec)
	if code != 0 || logs != "1048576\n" {
		t.Errorf("at the limit: exit %d, logs %q; want 0 and the whole env (1048576 bytes)", code, logs)
	}

	over := e.stdinSpec(t, e.shell, "/bin/sh", "-c", "true")
	over.Env = maps.Clone(env)
	over.Env["V0"] += "x"
	over.Env["V1"] = canary + env["V1"][len(canary):]
	_, err := e.r.Start(t.Context(), over)
	if !errors.Is(err, runner.ErrInvalidSpec) || !strings.Contains(err.Error(), "1048577 bytes") || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("one byte over: %v, want ErrInvalidSpec naming the size and the limit", err)
	}
	checkNoCanary(t, err)
	if l := e.list(t, t.Context(), over.TaskID); len(l) != 0 {
		t.Errorf("a refused env left %d container(s)", len(l))
	}
}

// TestStdinNoInit: without a usable init, stdin delivery is refused and
// nothing is created.
func TestStdinNoInit(t *testing.T) {
	e := setup(t, runner.Options{})
	for _, tc := range []struct {
		name, path, says string
	}{
		{"none configured", "", "--env-init"},
		{"missing file", filepath.Join(t.TempDir(), "nope"), "read the envvault-init program"},
		{"not a program", "/etc/hostname", "not an ELF executable"},
		{"dynamically linked", "/bin/ls", "CGO_ENABLED=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runner.New(e.cli, runner.Options{InitPath: tc.path, InitName: "envvault-init-test-none"})
			spec := e.stdinSpec(t, e.image)
			_, err := r.Start(t.Context(), spec)
			if !errors.Is(err, runner.ErrNoInit) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Start = %v, want ErrNoInit saying %q", err, tc.says)
			}
		})
	}
}

// TestStdinBadCommand: a command the image lacks is refused at the start,
// as with env delivery (the runner looks for it in the created container),
// naming the command only, and leaves no container. (One found but failing
// to execute ends the container with the init's 126: cmd/envvault-init's
// test.)
func TestStdinBadCommand(t *testing.T) {
	e := setupStdin(t)
	for _, tc := range []struct {
		name  string
		image string
		cmd   []string
		setup []string
		says  string
	}{
		{"missing path", e.image, []string{"/no/such/binary", canary}, nil, `cannot run command "/no/such/binary"`},
		{"not in PATH", e.image, []string{"nosuchcommand"}, nil, `cannot run command "nosuchcommand"`},
		{"a value in the command is withheld", e.image, []string{"/bin/" + canary}, nil, "withheld"},
		{"a directory", e.image, []string{"/tmp"}, nil, `cannot run command "/tmp"`},
		{"no shell for the setup commands", e.image, []string{testimage.EnvProbe}, []string{"true"}, "no executable shell at /bin/sh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.stdinSpec(t, tc.image, tc.cmd...)
			spec.SetupCommands = tc.setup
			id, err := e.r.Start(t.Context(), spec)
			if err == nil {
				_ = e.r.Remove(context.Background(), id)
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, runner.ErrBadCommand) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Start = %v, want ErrBadCommand saying %q", err, tc.says)
			}
			checkNoCanary(t, err)
		})
	}
	t.Run("found through a symbolic link, in PATH", func(t *testing.T) {
		spec := e.stdinSpec(t, e.shell, "sh", "-c", "echo linked")
		if code, logs := e.run(t, spec); code != 0 || logs != "linked\n" {
			t.Errorf("exit %d, logs %q", code, logs)
		}
	})
}

// TestStdinInitVolumeRemoved: a start after the init's volume was removed
// by hand fails saying so, and the next start fills it again.
func TestStdinInitVolumeRemoved(t *testing.T) {
	e := setupStdin(t)
	first := e.stdinSpec(t, e.image, testimage.EnvProbe, "echo", "CANARY")
	id := e.start(t, first)
	c, err := e.cli.ContainerInspect(t.Context(), id)
	if err != nil || len(c.Mounts) != 1 {
		t.Fatalf("inspect: %v, mounts %+v", err, c.Mounts)
	}
	if err := e.r.Remove(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := e.cli.VolumeRemove(t.Context(), c.Mounts[0].Name, false); err != nil {
		t.Fatal(err)
	}
	_, err = e.r.Start(t.Context(), e.stdinSpec(t, e.image, testimage.EnvProbe, "echo", "CANARY"))
	if !errors.Is(err, runner.ErrNoInit) || !strings.Contains(err.Error(), "filled again") {
		t.Fatalf("start without the volume: %v, want ErrNoInit", err)
	}
	if code, logs := e.run(t, e.stdinSpec(t, e.image, testimage.EnvProbe, "echo", "CANARY")); code != 0 || logs != canary+"\n" {
		t.Errorf("the next start: exit %d, logs %q", code, logs)
	}
}
