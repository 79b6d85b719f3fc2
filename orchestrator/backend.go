package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/envvault/envvault/vault"
)

// Backend is the container engine a worker runs tasks on: everything the
// orchestrator asks of an engine, and nothing more. The Docker Engine's
// is orchestrator/dockerbackend; a cluster engine (Swarm, Kubernetes:
// docs/kubernetes.md) implements the same methods.
//
// Every error a Backend returns, apart from a context's, has a message
// written by the backend that is safe to store and show to the task's
// owner: it never holds an env value nor what the engine says about a
// container's configuration. An error about a container that does not
// exist (any more) wraps ErrContainerNotFound.
type Backend interface {
	// Start makes and starts the container of spec and returns its id.
	// A container of spec.Name that exists already makes it fail, so one
	// attempt of a task never runs twice. A container made but not
	// started is removed before it returns an error.
	Start(ctx context.Context, spec Spec) (id string, err error)
	// Wait blocks until the container's process has ended and returns
	// its exit code; at once for one that has ended already.
	Wait(ctx context.Context, id string) (exitCode int, err error)
	// Logs returns the container's output, raw (mask it before storing
	// it): with follow, until the container ends (or ctx does, or the
	// reader is closed); without, the output so far. The caller closes it.
	Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error)
	// Stop ends the container's process: SIGTERM, then SIGKILL after
	// grace (the backend's own if grace <= 0). A container that has
	// ended or does not exist is no error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove stops the container and removes it with everything the
	// backend made for it. Removing one that is gone, or removing twice,
	// is no error.
	Remove(ctx context.Context, id string) error
	// List returns every container of envvault's on the engine, in any
	// state: what recovery reconciles tasks against.
	List(ctx context.Context) ([]Container, error)
	// Env returns the env the engine recorded for the container as
	// NAME=value lines: the spec's env with DeliveryEnv, none of it with
	// DeliveryStdin (the vault then gives the values to mask). It holds
	// secret values: never log or return it.
	Env(ctx context.Context, id string) ([]string, error)
}

// ErrContainerNotFound is wrapped by a Backend's errors about a container
// that does not exist (any more).
var ErrContainerNotFound = errors.New("container not found")

// Spec is a task's container as the orchestrator asks a Backend for it.
type Spec struct {
	TaskID    string
	UserID    string
	ProfileID string
	// Name is the container's name, ContainerName of the task's attempt:
	// the backend refuses a second container of one name, and List
	// returns it, by which recovery finds an attempt's container.
	Name          string
	Image         string
	Command       []string // after the image's entrypoint, in place of its CMD; empty: the image's own
	SetupCommands []string // shell lines run in order before the command
	// Env is the process's whole environment, secret values included.
	// How it reaches the process is Sandbox.EnvDelivery: "stdin" keeps
	// it out of what the engine records about the container.
	Env map[string]string
	// Sandbox is what the container may do and use, as the vault decided
	// it (vault.SandboxPolicy); the backend applies it in its own terms.
	Sandbox vault.SandboxSettings
}

// Container is what a Backend tells of a container of envvault's. It
// never holds the env.
type Container struct {
	ID     string
	Name   string // as given in Spec.Name
	TaskID string
	State  State
}

// State is where a container is, in the terms recovery needs.
type State int

const (
	// StateUnknown: the backend cannot tell; treated as started.
	StateUnknown State = iota
	// StateCreated: made but never started; its attempt never ran.
	StateCreated
	// StateRunning: its process runs (or is paused).
	StateRunning
	// StateExited: its process has ended; Wait returns at once.
	StateExited
)

func (s State) String() string {
	switch s {
	case StateCreated:
		return "created"
	case StateRunning:
		return "running"
	case StateExited:
		return "exited"
	}
	return "unknown"
}

// ContainerName is the name of the container of a task's attempt: the one
// place it is made, for Start and for recovery.
func ContainerName(taskID string, attempt int) string {
	return fmt.Sprintf("envvault-%s-%d", taskID, attempt)
}
