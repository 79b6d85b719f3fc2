// Package dockerbackend is the orchestrator's Backend on one Docker
// Engine: package runner, given the orchestrator's terms. It translates
// and adds nothing else; runner says what the engine is asked.
package dockerbackend

import (
	"context"
	"errors"
	"io"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// Backend is a runner as an orchestrator.Backend: Stop and Remove are the
// runner's own, as are the methods the orchestrator does not call (Ping,
// Inspect).
type Backend struct {
	*runner.Runner
}

var _ orchestrator.Backend = (*Backend)(nil)

// New returns the Backend of r.
func New(r *runner.Runner) *Backend { return &Backend{Runner: r} }

// Start starts the container of spec (runner.Runner.Start). Its errors
// are the runner's.
func (b *Backend) Start(ctx context.Context, spec orchestrator.Spec) (string, error) {
	return b.Runner.Start(ctx, toSpec(spec))
}

// Wait is runner.Runner.Wait.
func (b *Backend) Wait(ctx context.Context, id string) (int, error) {
	code, err := b.Runner.Wait(ctx, id)
	return code, notFound(err)
}

// Logs is runner.Runner.Logs.
func (b *Backend) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	rc, err := b.Runner.Logs(ctx, id, follow)
	return rc, notFound(err)
}

// Env is runner.Runner.Env: the env of `docker inspect`.
func (b *Backend) Env(ctx context.Context, id string) ([]string, error) {
	env, err := b.Runner.Env(ctx, id)
	return env, notFound(err)
}

// List is runner.Runner.List, Docker's states told as the orchestrator's.
func (b *Backend) List(ctx context.Context) ([]orchestrator.Container, error) {
	list, err := b.Runner.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]orchestrator.Container, len(list))
	for i, c := range list {
		out[i] = orchestrator.Container{ID: c.ID, Name: c.Name, TaskID: c.TaskID, State: state(c.State)}
	}
	return out, nil
}

// state is the orchestrator's State of a Docker container state.
func state(docker string) orchestrator.State {
	switch docker {
	case "created":
		return orchestrator.StateCreated
	case "running", "paused", "restarting":
		// Paused and restarting containers have a process that may go
		// on: recovery waits for it.
		return orchestrator.StateRunning
	case "exited", "dead", "removing":
		return orchestrator.StateExited
	}
	return orchestrator.StateUnknown
}

// toSpec is the runner's spec of an orchestrator's: the vault's sandbox
// settings in the runner's units.
func toSpec(s orchestrator.Spec) runner.Spec {
	sb := s.Sandbox
	delivery := runner.DeliveryEnv
	if sb.EnvDelivery == vault.EnvDeliveryStdin {
		delivery = runner.DeliveryStdin
	}
	return runner.Spec{
		TaskID: s.TaskID, UserID: s.UserID, ProfileID: s.ProfileID, Name: s.Name,
		Image: s.Image, Command: s.Command, SetupCommands: s.SetupCommands, Env: s.Env,
		Hardening: runner.Hardening{
			User:           sb.User,
			MemoryBytes:    sb.MemoryMB << 20,
			NanoCPUs:       sb.CPUMillis * 1_000_000,
			PidsLimit:      sb.PidsLimit,
			CapAdd:         sb.CapAdd,
			Network:        sb.Network,
			ReadOnlyRootfs: sb.ReadOnlyRootfs,
		},
		EnvDelivery: delivery,
	}
}

// notFound makes the runner's ErrContainerNotFound the orchestrator's
// too, keeping the runner's message and kinds.
func notFound(err error) error {
	if err == nil || !errors.Is(err, runner.ErrContainerNotFound) {
		return err
	}
	return &goneError{err}
}

type goneError struct{ err error }

func (e *goneError) Error() string { return e.err.Error() }

func (e *goneError) Unwrap() []error { return []error{orchestrator.ErrContainerNotFound, e.err} }
