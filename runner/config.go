package runner

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
)

// Labels set on every container the runner creates. Recovery finds
// envvault's containers, and the task each serves, by them.
const (
	LabelManaged = "envvault.managed" // always "true"
	LabelTask    = "envvault.task"
	LabelUser    = "envvault.user"
	LabelProfile = "envvault.profile"
)

// Shell is the shell setup commands run in; an image without it cannot
// run a profile that has setup commands.
const Shell = "/bin/sh"

// Spec is a container to start for a task.
type Spec struct {
	TaskID    string
	UserID    string
	ProfileID string
	// Name is the container's name; "" lets Docker choose one. Docker
	// refuses a second container of one name (ErrConflict), which makes a
	// name a guard against starting one task twice.
	Name  string
	Image string
	// Command is the argv given to the image, as `docker run IMAGE
	// COMMAND...` gives it: after the image's entrypoint, in place of its
	// CMD. Empty runs the image's own.
	Command []string
	// SetupCommands are shell lines run by /bin/sh, in order, before the
	// command; the first that fails ends the container with its status and
	// the command does not run. Blank lines are skipped.
	SetupCommands []string
	// Env is the container's whole environment: NAME -> value, secret
	// values included. It reaches Docker and nothing else.
	Env map[string]string
	// Hardening is what the container may do and use (hardening.go).
	Hardening Hardening
	// EnvDelivery is how Env reaches the process: DeliveryEnv ("" too)
	// or DeliveryStdin (delivery.go).
	EnvDelivery string
}

// imageConfig is what the runner needs of an image's own configuration.
type imageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // read for PATH (stdin delivery)
}

// validate checks what Docker would otherwise reject with a message that
// might quote the configuration. Its errors name env names, never values.
func (s *Spec) validate() error {
	if s.Image == "" {
		return newError(ErrInvalidSpec, "no image given", nil)
	}
	if _, err := reference.ParseAnyReference(s.Image); err != nil {
		return newError(ErrInvalidSpec, fmt.Sprintf("image %q is not a valid image reference", s.Image), nil)
	}
	for name, value := range s.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return newError(ErrInvalidSpec, fmt.Sprintf("env name %q is empty or contains '=' or NUL", name), nil)
		}
		if strings.IndexByte(value, 0) >= 0 {
			return newError(ErrInvalidSpec, fmt.Sprintf("the value of env %s contains a NUL byte", name), nil)
		}
	}
	if s.EnvDelivery != "" && s.EnvDelivery != DeliveryEnv && s.EnvDelivery != DeliveryStdin {
		return newError(ErrInvalidSpec, fmt.Sprintf("env delivery %q is neither %q nor %q", s.EnvDelivery, DeliveryEnv, DeliveryStdin), nil)
	}
	for i, arg := range slices.Concat(s.Command, s.SetupCommands) {
		if strings.IndexByte(arg, 0) >= 0 {
			return newError(ErrInvalidSpec, fmt.Sprintf("command or setup command entry %d contains a NUL byte", i), nil)
		}
	}
	return nil
}

// toEnv returns env as Docker takes it: "NAME=value", sorted by name.
func toEnv(env map[string]string) []string {
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = name + "=" + env[name]
	}
	return out
}

// toConfig returns the container configuration of spec on an image whose
// own entrypoint and CMD are img (used only with setup commands).
//
// Without setup commands the command goes to Docker as Cmd and the image's
// entrypoint stays, exactly as `docker run IMAGE COMMAND...`. With setup
// commands the entrypoint becomes
//
//	/bin/sh -c '{ setup1
//	} && { setup2
//	} && exec "$@"' sh ARGV...
//
// where ARGV is what the image would have run (its entrypoint, then the
// command or its CMD). ARGV is passed as positional parameters, never
// pasted into the script, so no argument is ever re-parsed by the shell.
// Each setup line sits in its own brace group, so a line holding `;`, `||`
// or a trailing comment still gates the next with &&, and `cd` or `export`
// in a setup line carry over to the command.
func toConfig(spec Spec, img imageConfig) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:  spec.Image,
		Env:    toEnv(spec.Env),
		Labels: labels(spec),
		User:   spec.Hardening.User,
	}
	if script, ok := setupScript(spec.SetupCommands); ok {
		cmd := spec.Command
		if len(cmd) == 0 {
			cmd = img.Cmd
		}
		cfg.Entrypoint = []string{Shell, "-c", script, "sh"}
		cfg.Cmd = slices.Concat(img.Entrypoint, cmd)
	} else if len(spec.Command) > 0 {
		cfg.Cmd = slices.Clone(spec.Command)
	}
	host := &container.HostConfig{
		// The runner reads the logs back through the API, which needs a
		// driver that keeps them, whatever the engine's default is.
		LogConfig:     container.LogConfig{Type: "json-file"},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
	}
	harden(host, spec.Hardening)
	return cfg, host
}

// setupScript joins the non-blank setup lines into the script toConfig
// describes; ok is false when there are none.
func setupScript(lines []string) (script string, ok bool) {
	var b strings.Builder
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		// The newline before "}" ends the line even if it ends in a
		// comment or lacks a final ";".
		b.WriteString("{ " + line + "\n} && ")
	}
	if b.Len() == 0 {
		return "", false
	}
	b.WriteString(`exec "$@"`)
	return b.String(), true
}

func labels(spec Spec) map[string]string {
	return map[string]string{
		LabelManaged: "true",
		LabelTask:    spec.TaskID,
		LabelUser:    spec.UserID,
		LabelProfile: spec.ProfileID,
	}
}
