package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/envvault/envvault/mask"
)

// Kinds of runner error; test them with errors.Is.
var (
	// ErrInvalidSpec: the spec cannot describe a container (no image, an
	// env name with '=', a NUL byte).
	ErrInvalidSpec = errors.New("invalid container spec")
	// ErrImageNotFound: the engine does not have the image. The runner
	// never pulls.
	ErrImageNotFound = errors.New("image not found")
	// ErrBadCommand: the container was created but its command (or the
	// shell of its setup commands) cannot be executed.
	ErrBadCommand = errors.New("command cannot be run")
	// ErrUnavailable: the Docker Engine does not answer.
	ErrUnavailable = errors.New("docker engine unreachable")
	// ErrContainerNotFound: no such container (any more).
	ErrContainerNotFound = errors.New("container not found")
	// ErrConflict: a container of the spec's name exists already.
	ErrConflict = errors.New("container name in use")
	// ErrRefused: the engine refused the request for another reason.
	ErrRefused = errors.New("docker engine refused")
)

// Error is every error the runner returns apart from a canceled context.
// Its message is safe to store and show to the task's owner: it is
// written by the runner, never copied from what the engine said about a
// container's configuration, so it holds no env value.
type Error struct {
	kind  error
	msg   string
	cause error // the engine's error, kept only where it cannot echo the configuration
}

func newError(kind error, msg string, cause error) *Error {
	return &Error{kind: kind, msg: msg, cause: cause}
}

func (e *Error) Error() string { return e.msg }

// Unwrap gives errors.Is the kind and, for operations on an existing
// container, the engine's own error.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// Steps of Start, for startError.
const (
	stepImage  = "inspect the image"
	stepCreate = "create"
	stepStart  = "start"
)

// startError turns an error of the engine, met at a step of starting the
// container of spec, into an *Error whose message is written here. The
// engine's text is dropped: it may quote the configuration. Names taken
// from spec (image, command) appear only if they hold no env value.
func startError(ctx context.Context, r *Runner, step string, spec *Spec, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("start container: %s: %w", step, ctxErr)
	}
	image := quoteSafe(spec, spec.Image)
	switch {
	case client.IsErrConnectionFailed(err):
		return newError(ErrUnavailable, fmt.Sprintf("Docker Engine is not reachable at %s", r.cli.DaemonHost()), nil)
	case step != stepStart && cerrdefs.IsNotFound(err):
		return newError(ErrImageNotFound, fmt.Sprintf("image %s is not on this Docker Engine; envvault never pulls images: build or pull it on the engine first", image), nil)
	case step == stepCreate && cerrdefs.IsConflict(err):
		return newError(ErrConflict, fmt.Sprintf("a container named %s already exists", quoteSafe(spec, spec.Name)), nil)
	case step == stepStart && cerrdefs.IsInvalidArgument(err):
		// The engine says invalid argument for a start only when the
		// runtime could not execute the process (daemon/start.go,
		// translateContainerdStartErr).
		return badCommand(spec)
	case step == stepStart && cerrdefs.IsNotFound(err):
		return newError(ErrContainerNotFound, "the container was removed before it started", nil)
	case step == stepImage:
		return newError(ErrRefused, fmt.Sprintf("Docker Engine refused to inspect image %s (%s)", image, class(err)), nil)
	}
	return newError(ErrRefused, fmt.Sprintf("Docker Engine refused to %s the container for image %s (%s)", step, image, class(err)), nil)
}

// badCommand is the ErrBadCommand of spec: its image cannot execute the
// shell of its setup commands, or its command.
func badCommand(spec *Spec) error {
	image := quoteSafe(spec, spec.Image)
	if _, setup := setupScript(spec.SetupCommands); setup {
		return newError(ErrBadCommand, fmt.Sprintf("image %s cannot run the setup commands: it has no executable shell at %s", image, Shell), nil)
	}
	what := "the image's own command"
	if len(spec.Command) > 0 {
		what = "command " + quoteSafe(spec, spec.Command[0])
	}
	return newError(ErrBadCommand, fmt.Sprintf("image %s cannot run %s: no such executable file, or it cannot be executed", image, what), nil)
}

// opError turns an engine error met doing what (say, "stop container
// 3f2a…") into an *Error that keeps the engine's error as its cause:
// these requests carry no configuration for the engine to echo.
func opError(ctx context.Context, r *Runner, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	switch {
	case client.IsErrConnectionFailed(err):
		return newError(ErrUnavailable, fmt.Sprintf("%s: Docker Engine is not reachable at %s", what, r.cli.DaemonHost()), err)
	case cerrdefs.IsNotFound(err):
		return newError(ErrContainerNotFound, what+": no such container", err)
	}
	return newError(ErrRefused, fmt.Sprintf("%s: %v", what, err), err)
}

// class names the kind of an engine error without its text.
func class(err error) string {
	switch {
	case cerrdefs.IsInvalidArgument(err):
		return "invalid parameter"
	case cerrdefs.IsPermissionDenied(err), cerrdefs.IsUnauthorized(err):
		return "permission denied"
	case cerrdefs.IsUnavailable(err):
		return "engine unavailable"
	case cerrdefs.IsConflict(err):
		return "conflict"
	case cerrdefs.IsNotFound(err):
		return "not found"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return "engine error; see the Docker Engine's log"
}

// quoteSafe quotes s for a message, or gives a placeholder if s contains
// a maskable env value of spec (say, a command line holding a token).
func quoteSafe(spec *Spec, s string) string {
	for _, v := range spec.Env {
		if len(v) >= mask.MinLen && strings.Contains(s, v) {
			return "(withheld: it contains an env value)"
		}
	}
	return fmt.Sprintf("%q", s)
}
