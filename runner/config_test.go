package runner

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestToEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nil", nil, []string{}},
		{"sorted by name", map[string]string{"B": "2", "A": "1", "A_B": "3", "AB": "4"}, []string{"A=1", "AB=4", "A_B=3", "B=2"}},
		{"value kept byte for byte", map[string]string{"X": " a=b \n c\t"}, []string{"X= a=b \n c\t"}},
		{"empty value", map[string]string{"EMPTY": ""}, []string{"EMPTY="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := toEnv(tc.env); !slices.Equal(got, tc.want) {
				t.Errorf("toEnv = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestToConfig(t *testing.T) {
	base := Spec{TaskID: "tsk_1", UserID: "usr_1", ProfileID: "prof_1", Image: "img:1", Env: map[string]string{"B": "2", "A": "1"}}
	wantLabels := map[string]string{LabelManaged: "true", LabelTask: "tsk_1", LabelUser: "usr_1", LabelProfile: "prof_1"}
	with := func(f func(*Spec)) Spec { s := base; f(&s); return s }
	script2 := "{ cd /tmp\n} && { export X=1 # note\n} && exec \"$@\""

	for _, tc := range []struct {
		name           string
		spec           Spec
		img            imageConfig
		wantEntrypoint []string
		wantCmd        []string
	}{
		{name: "image's own command", spec: base, img: imageConfig{Cmd: []string{"ignored"}}},
		{name: "command replaces CMD, keeps entrypoint", spec: with(func(s *Spec) { s.Command = []string{"/app", "a b", "$HOME"} }),
			wantCmd: []string{"/app", "a b", "$HOME"}},
		{name: "setup then command", spec: with(func(s *Spec) {
			s.Command = []string{"/app", "it's", `"q"`}
			s.SetupCommands = []string{"cd /tmp", "  ", "export X=1 # note"}
		}),
			img:            imageConfig{Cmd: []string{"ignored"}},
			wantEntrypoint: []string{"/bin/sh", "-c", script2, "sh"},
			wantCmd:        []string{"/app", "it's", `"q"`}},
		{name: "setup then image entrypoint and CMD", spec: with(func(s *Spec) { s.SetupCommands = []string{"cd /tmp", "export X=1 # note"} }),
			img:            imageConfig{Entrypoint: []string{"/entry", "-v"}, Cmd: []string{"serve"}},
			wantEntrypoint: []string{"/bin/sh", "-c", script2, "sh"},
			wantCmd:        []string{"/entry", "-v", "serve"}},
		{name: "setup then image entrypoint and command", spec: with(func(s *Spec) {
			s.SetupCommands = []string{"true"}
			s.Command = []string{"run"}
		}),
			img:            imageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}},
			wantEntrypoint: []string{"/bin/sh", "-c", "{ true\n} && exec \"$@\"", "sh"},
			wantCmd:        []string{"/entry", "run"}},
		{name: "setup only", spec: with(func(s *Spec) { s.SetupCommands = []string{"true"} }),
			wantEntrypoint: []string{"/bin/sh", "-c", "{ true\n} && exec \"$@\"", "sh"}},
		{name: "blank setup lines are none", spec: with(func(s *Spec) { s.SetupCommands = []string{"", " \t"}; s.Command = []string{"/app"} }),
			img: imageConfig{Entrypoint: []string{"/entry"}}, wantCmd: []string{"/app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, host := toConfig(tc.spec, tc.img)
			if cfg.Image != "img:1" {
				t.Errorf("Image = %q", cfg.Image)
			}
			if want := []string{"A=1", "B=2"}; !slices.Equal(cfg.Env, want) {
				t.Errorf("Env = %q, want %q", cfg.Env, want)
			}
			if !maps.Equal(cfg.Labels, wantLabels) {
				t.Errorf("Labels = %v, want %v", cfg.Labels, wantLabels)
			}
			if !slices.Equal(cfg.Entrypoint, tc.wantEntrypoint) {
				t.Errorf("Entrypoint = %q, want %q", cfg.Entrypoint, tc.wantEntrypoint)
			}
			if !slices.Equal(cfg.Cmd, tc.wantCmd) {
				t.Errorf("Cmd = %q, want %q", cfg.Cmd, tc.wantCmd)
			}
			if cfg.Tty || cfg.OpenStdin || cfg.AttachStdin {
				t.Error("container must have no TTY or stdin: its logs are read demultiplexed")
			}
			if host.LogConfig.Type != "json-file" || host.AutoRemove || host.RestartPolicy.Name != container.RestartPolicyDisabled {
				t.Errorf("HostConfig = %+v", host)
			}
		})
	}
}

// TestSetupScriptQuoting runs the setup script with a real shell, proving
// that arguments reach the command unparsed and that a failing setup line
// stops the rest.
func TestSetupScriptQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine for the quoting check (the Docker test covers it too)")
	}
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"it's", `"double"`, "$HOME", "a  b", "`id`", "; rm -rf /", "\nnewline", ""}

	t.Run("arguments reach the command as given", func(t *testing.T) {
		script, _ := setupScript([]string{"cd /", "export SETUP=done # comment", "X=1; Y=2"})
		cmd := exec.Command(sh, append([]string{"-c", script, "sh", os.Args[0], "-test.run=^TestHelperArgs$", "--", out}, args...)...)
		cmd.Env = append(os.Environ(), "ENVVAULT_HELPER=1")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run: %v\n%s", err, msg)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want := "SETUP=done\n" + strings.Join(args, "\x00")
		if string(got) != want {
			t.Errorf("command saw %q, want %q", got, want)
		}
	})
	t.Run("a failing line stops the script", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "ran")
		script, _ := setupScript([]string{"false || exit 7", "touch " + marker})
		err := exec.Command(sh, "-c", script, "sh", "touch", marker).Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 7 {
			t.Fatalf("err = %v, want exit status 7", err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("a line after the failing one ran")
		}
		script, _ = setupScript([]string{"false; true", "false"})
		if err := exec.Command(sh, "-c", script, "sh", "true").Run(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("err = %v, want exit status 1 from the second line", err)
		}
	})
}

// TestHelperArgs is run by TestSetupScriptQuoting as the command: it writes
// the env SETUP and its arguments after the file name to that file.
func TestHelperArgs(t *testing.T) {
	if os.Getenv("ENVVAULT_HELPER") != "1" {
		return // a helper process only; nothing to test in the suite
	}
	i := slices.Index(os.Args, "--")
	file, args := os.Args[i+1], os.Args[i+2:]
	body := "SETUP=" + os.Getenv("SETUP") + "\n" + strings.Join(args, "\x00")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSpecValidate(t *testing.T) {
	const canary = "canary-value-3f9a"
	for _, tc := range []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"ok", Spec{Image: "envvault-test-env:abc", Env: map[string]string{"A": canary}}, true},
		{"image id", Spec{Image: strings.Repeat("ab", 32)}, true},
		{"digest", Spec{Image: "busybox@sha256:" + strings.Repeat("ab", 32)}, true},
		{"no image", Spec{}, false},
		{"bad image", Spec{Image: "Upper Case"}, false},
		{"name with =", Spec{Image: "x", Env: map[string]string{"A=B": canary}}, false},
		{"empty name", Spec{Image: "x", Env: map[string]string{"": canary}}, false},
		{"NUL in value", Spec{Image: "x", Env: map[string]string{"A": canary + "\x00"}}, false},
		{"NUL in command", Spec{Image: "x", Command: []string{"a\x00"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.validate()
			if (err == nil) != tc.ok {
				t.Fatalf("validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Errorf("error %v is not ErrInvalidSpec", err)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("error %q holds the env value", err)
				}
			}
		})
	}
}
