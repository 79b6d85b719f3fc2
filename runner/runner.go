// Package runner is the only code in envvault that talks to the Docker
// Engine: it starts a task's container with its env, waits for it, reads
// its logs and removes it, and lists envvault's containers for recovery.
//
// The runner never pulls an image, never logs, and never puts what the
// engine says about a container's configuration into an error, because
// that configuration holds secret values. Logs it returns are raw: wrap
// them with mask.NewReader or mask.NewWriter before they are stored or shown.
package runner

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/envvault/envvault/runner/envblock"
)

// DefaultStopTimeout is how long Remove lets a running container handle
// SIGTERM before it is killed, unless Options say otherwise.
const DefaultStopTimeout = 10 * time.Second

// cleanupTimeout bounds the removal of a container that failed to start,
// which runs even if the caller's context is done.
const cleanupTimeout = 30 * time.Second

// Options tune a Runner; zero values take the defaults.
type Options struct {
	// StopTimeout is the grace Remove gives a running container between
	// SIGTERM and SIGKILL; DefaultStopTimeout if 0.
	StopTimeout time.Duration
	// InitPath is the envvault-init program (static, Linux) on this
	// host, needed by specs with EnvDelivery DeliveryStdin; "" refuses
	// them with ErrNoInit.
	InitPath string
	// InitName names the init's image and volume; DefaultInitName if "".
	InitName string
}

// Runner runs task containers on one Docker Engine. It is safe for
// concurrent use.
type Runner struct {
	cli         client.APIClient
	stopTimeout time.Duration
	initMu      sync.Mutex
	init        initState
}

// New returns a runner on the engine cli talks to. It does not take
// ownership of cli.
func New(cli client.APIClient, opts Options) *Runner {
	r := &Runner{cli: cli, stopTimeout: opts.StopTimeout, init: initState{path: opts.InitPath, name: opts.InitName}}
	if r.stopTimeout <= 0 {
		r.stopTimeout = DefaultStopTimeout
	}
	if r.init.name == "" {
		r.init.name = DefaultInitName
	}
	return r
}

// Container is what the runner tells of a container it created. It never
// holds the env.
type Container struct {
	ID        string
	Name      string
	TaskID    string
	UserID    string
	ProfileID string
	Image     string
	// State is Docker's: created, running, paused, restarting, removing,
	// exited or dead.
	State   string
	Running bool
	// ExitCode, StartedAt and FinishedAt are filled by Inspect only.
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

// Ping checks that the engine answers. Returns ErrUnavailable if not.
func (r *Runner) Ping(ctx context.Context) error {
	if _, err := r.cli.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return newError(ErrUnavailable, "Docker Engine is not reachable at "+r.cli.DaemonHost(), err)
	}
	return nil
}

// Start creates and starts the container of spec and returns its id. It
// fails fast, never pulling, if the engine lacks the image.
//
// Returns ErrInvalidSpec, ErrImageNotFound, ErrBadCommand (the command, or
// the shell of the setup commands, cannot be executed), ErrUnavailable,
// ErrConflict (spec.Name is taken) or ErrRefused, each with a message
// written by the runner that never holds an env value; or the context's
// error. A container that was created but failed to start is removed.
//
// With DeliveryStdin no env value reaches the engine's configuration: the
// start also returns ErrNoInit (no usable init program) and ErrInvalidSpec
// for an env over envblock.MaxSize, and a command that cannot be executed
// is found only inside the container, after the start: the init ends it
// with status 127 (not found) or 126 and says so in its logs, as a shell
// would.
func (r *Runner) Start(ctx context.Context, spec Spec) (string, error) {
	if err := spec.validate(); err != nil {
		return "", err
	}
	stdin := spec.EnvDelivery == DeliveryStdin
	var block []byte
	var vol string
	if stdin {
		var err error
		if block, err = envblock.Encode(spec.Env); err != nil {
			return "", newError(ErrInvalidSpec, err.Error(), nil)
		}
		if vol, err = r.ensureInit(ctx); err != nil {
			return "", err
		}
	}
	var img imageConfig
	if _, setup := setupScript(spec.SetupCommands); setup || stdin {
		// The shell, or the init, replaces the image's entrypoint, so
		// the argv it execs must be rebuilt from the image's own
		// configuration.
		inspect, err := r.cli.ImageInspect(ctx, spec.Image)
		if err != nil {
			return "", startError(ctx, r, stepImage, &spec, err)
		}
		if inspect.Config != nil {
			img = imageConfig{Entrypoint: inspect.Config.Entrypoint, Cmd: inspect.Config.Cmd, Env: inspect.Config.Env}
		}
	}
	cfg, host := toConfig(spec, img)
	if stdin {
		if err := stdinConfig(cfg, host, &spec, img, vol); err != nil {
			return "", err
		}
	}
	created, err := r.cli.ContainerCreate(ctx, cfg, host, nil, nil, spec.Name)
	if err != nil {
		return "", startError(ctx, r, stepCreate, &spec, err)
	}
	if stdin {
		err = r.deliver(ctx, created.ID, &spec, img, cfg.Cmd[0], block)
	} else if err = r.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		err = startError(ctx, r, stepStart, &spec, err)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = r.cli.ContainerRemove(cctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		return "", err
	}
	return created.ID, nil
}

// Wait blocks until the container is not running and returns its exit
// code; for a container that has already exited it returns at once.
// Returns ErrContainerNotFound, ErrUnavailable or ErrRefused, or the
// context's error.
func (r *Runner) Wait(ctx context.Context, id string) (int, error) {
	resC, errC := r.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-resC:
		if res.Error != nil && res.Error.Message != "" {
			return 0, newError(ErrRefused, "wait for container "+id+": "+res.Error.Message, nil)
		}
		return int(res.StatusCode), nil
	case err := <-errC:
		return 0, opError(ctx, r, "wait for container "+id, err)
	}
}

// Logs returns the container's stdout and stderr, demultiplexed and merged
// in the order the engine gives them. With follow it streams until the
// container exits (or ctx ends, or the reader is closed); without, it ends
// at the logs so far. The caller closes it.
//
// The stream is raw and holds whatever the container printed, secret
// values included: mask it (mask.NewReader) before storing or showing it.
// Returns ErrContainerNotFound, ErrUnavailable or ErrRefused.
func (r *Runner) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	raw, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow})
	if err != nil {
		return nil, opError(ctx, r, "read the logs of container "+id, err)
	}
	pr, pw := io.Pipe()
	go func() {
		// The container has no TTY, so the stream is multiplexed; both
		// halves go to one pipe, written from this goroutine only.
		_, err := stdcopy.StdCopy(pw, pw, raw)
		pw.CloseWithError(err)
	}()
	return &logs{PipeReader: pr, raw: raw}, nil
}

type logs struct {
	*io.PipeReader
	raw io.ReadCloser
}

func (l *logs) Close() error {
	err := l.raw.Close()
	_ = l.PipeReader.Close()
	return err
}

// Stop sends SIGTERM and, after timeout (rounded up to a second; the
// runner's StopTimeout if timeout <= 0), SIGKILL, and returns once the
// container is not running. A container that is not running or does not
// exist is no error. Returns ErrUnavailable or ErrRefused, or the
// context's error.
func (r *Runner) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = r.stopTimeout
	}
	secs := int(math.Ceil(timeout.Seconds()))
	err := r.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return opError(ctx, r, "stop container "+id, err)
}

// Remove stops the container (SIGTERM, then SIGKILL after the runner's
// StopTimeout), kills it if stopping fails, and removes it with its
// anonymous volumes. Each step tolerates a container already gone, so
// removing twice is no error. Returns ErrUnavailable or ErrRefused, or
// the context's error.
func (r *Runner) Remove(ctx context.Context, id string) error {
	if err := r.Stop(ctx, id, r.stopTimeout); err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrUnavailable) {
			return err
		}
		// A stop can fail where a kill succeeds; whatever the kill says,
		// the forced removal below kills too.
		_ = r.cli.ContainerKill(ctx, id, "KILL")
	}
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	if cerrdefs.IsConflict(err) && r.removing(ctx, id) {
		return nil
	}
	return opError(ctx, r, "remove container "+id, err)
}

// removing reports whether another caller is removing the container, and
// if so waits until it is gone.
func (r *Runner) removing(ctx context.Context, id string) bool {
	c, err := r.cli.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return true
	}
	if err != nil || c.State == nil || c.State.Status != container.StateRemoving {
		return false
	}
	resC, errC := r.cli.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-resC:
		return true
	case err := <-errC:
		return cerrdefs.IsNotFound(err)
	}
}

// List returns every container labelled as envvault's on this engine,
// running or not: what recovery reconciles tasks against. Returns
// ErrUnavailable or ErrRefused, or the context's error.
func (r *Runner) List(ctx context.Context) ([]Container, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true")),
	})
	if err != nil {
		return nil, opError(ctx, r, "list envvault's containers", err)
	}
	out := make([]Container, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Container{
			ID: c.ID, Name: name, Image: c.Image,
			TaskID: c.Labels[LabelTask], UserID: c.Labels[LabelUser], ProfileID: c.Labels[LabelProfile],
			State: string(c.State), Running: c.State == container.StateRunning,
		})
	}
	return out, nil
}

// Inspect returns the state of a container. Returns ErrContainerNotFound,
// ErrUnavailable or ErrRefused, or the context's error.
func (r *Runner) Inspect(ctx context.Context, id string) (*Container, error) {
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, opError(ctx, r, "inspect container "+id, err)
	}
	out := &Container{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.Config != nil {
		out.Image = c.Config.Image
		out.TaskID, out.UserID, out.ProfileID = c.Config.Labels[LabelTask], c.Config.Labels[LabelUser], c.Config.Labels[LabelProfile]
	}
	if c.State != nil {
		out.State, out.Running, out.ExitCode = string(c.State.Status), c.State.Running, c.State.ExitCode
		out.StartedAt, out.FinishedAt = parseTime(c.State.StartedAt), parseTime(c.State.FinishedAt)
	}
	return out, nil
}

// Env returns the environment the engine recorded for the container
// (`docker inspect`'s Config.Env): the spec's env plus what the image
// sets. The orchestrator reads it after a restart of envvault to rebuild
// the log masks of a container started before it; a container of
// DeliveryStdin shows only its image's env here. It holds secret values:
// never log or return it. Returns ErrContainerNotFound, ErrUnavailable or
// ErrRefused.
func (r *Runner) Env(ctx context.Context, id string) ([]string, error) {
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, opError(ctx, r, "inspect container "+id, err)
	}
	if c.Config == nil {
		return nil, nil
	}
	return c.Config.Env, nil
}

// parseTime reads the engine's RFC 3339 times; its zero time
// ("0001-01-01T00:00:00Z") and anything unreadable become the zero Time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
