// Package swarmbackend is the orchestrator's Backend on Docker Swarm: a
// task's container is the one task of a service of its own, which Swarm
// places on any node that satisfies the operator's constraints.
//
// The service is replicated with one replica and restart condition none,
// not a replicated job: a job cannot be stopped but by removing it, which
// loses its exit code, and an update of a job runs it again. Stop updates
// the service instead (its stop grace period, and a placement constraint
// no node satisfies): Swarm shuts the task down (SIGTERM, SIGKILL after the
// grace period) and keeps its status and exit code; the replacement task
// it makes is never scheduled. Remove removes the service, then its
// secret.
//
// The env never stands in the service spec: it is the task's env block
// (runner/envblock) in a Swarm secret of its own, which Swarm gives the
// task's container as a file of an in-memory filesystem (SecretPath);
// envvault-init, the container's command, reads it (-f) and execs the
// program, as with the Docker backend's stdin delivery, whatever the
// profile's env_delivery. `docker service inspect` shows the init, the
// program's argv, labels and mounts; `docker secret inspect` shows the
// secret's name and labels, never its data; `docker inspect` of the task
// container shows the image's env only. The init comes from the same
// named volume the Docker backend fills (runner.Runner.PrepareInit), on
// the node envvault talks to; every other node that may run tasks needs
// that volume too (see README "Backends").
//
// What Swarm's service spec on Engine 20.10 (API 1.41) does not carry, and
// the Docker backend sets: no-new-privileges (Privileges.NoNewPrivileges
// came with API 1.46; 20.10 ignores it), the network mode none (a service
// cannot join the none network: such a profile is refused at the start),
// a memory+swap limit equal to the memory limit (Swarm sets memory only),
// a private IPC namespace by the spec (the engine's default, private since
// 19.03, applies), and tmpfs options: /tmp is rw,nosuid,nodev,noexec (the
// Docker backend's allows exec). Capabilities (all dropped but CapAdd),
// user, read-only root, memory, CPU and PIDs limits are Swarm's own.
package swarmbackend

import (
	"context"
	"errors"
	"fmt"

	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/runner/envblock"
)

// DefaultStartTimeout bounds the wait for Swarm to run a task's container
// (scheduling, and the node's start of it); a task not running by then is
// removed and its start fails with what Swarm said of it (such as "no
// suitable node").
const DefaultStartTimeout = 2 * time.Minute

// taskStarting is the message of a task's status while its node starts
// its container, kept by a task that failed there: it never ran.
const taskStarting = "starting"

// pollInterval is how often the backend asks the manager about a task:
// Swarm's API has no wait and no task events.
const pollInterval = 100 * time.Millisecond

// Options tune a Backend; zero values take the defaults.
type Options struct {
	// Constraints are the operator's placement constraints, each checked
	// by ValidateConstraint, on every task's service.
	Constraints []string
	// StopTimeout is the stop grace period of a service (Remove's, and
	// Stop's when given none); runner.DefaultStopTimeout if 0.
	StopTimeout time.Duration
	// StartTimeout: DefaultStartTimeout if 0.
	StartTimeout time.Duration
	// InitPath and InitName are the init program's, as runner.Options.
	InitPath, InitName string
}

// Backend runs tasks as Swarm services through a manager node's engine.
// It is safe for concurrent use.
type Backend struct {
	cli  client.APIClient
	init *runner.Runner // prepares the init volume and reads images
	opts Options
}

var _ orchestrator.Backend = (*Backend)(nil)

// New returns a Backend on the Swarm manager cli talks to. It does not
// take ownership of cli. Its error names a malformed constraint.
func New(cli client.APIClient, opts Options) (*Backend, error) {
	for _, c := range opts.Constraints {
		if err := ValidateConstraint(c); err != nil {
			return nil, err
		}
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = runner.DefaultStopTimeout
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	r := runner.New(cli, runner.Options{InitPath: opts.InitPath, InitName: opts.InitName, StopTimeout: opts.StopTimeout})
	return &Backend{cli: cli, init: r, opts: opts}, nil
}

// Runner is the Docker runner the backend prepares the init with, on the
// manager's engine: tests remove the init with it.
func (b *Backend) Runner() *runner.Runner { return b.init }

// Start makes the task's secret and service and returns the service's id
// once Swarm runs its task (or it has ended already). Its errors are the
// runner's for the spec and image (runner.Runner.ProcessArgv, read on the
// manager's engine), an env block over MaxSecretSize, a name in use, or
// what Swarm says of a task it did not run within the start timeout.
// Whatever it made is removed when it fails.
func (b *Backend) Start(ctx context.Context, spec orchestrator.Spec) (string, error) {
	argv, err := b.init.ProcessArgv(ctx, runner.Spec{
		TaskID: spec.TaskID, UserID: spec.UserID, ProfileID: spec.ProfileID, Name: spec.Name, Image: spec.Image,
		Command: spec.Command, SetupCommands: spec.SetupCommands, Env: spec.Env, EnvDelivery: runner.DeliveryStdin,
	})
	if err != nil {
		return "", err
	}
	block, err := envblock.Encode(spec.Env)
	if err != nil {
		return "", fmt.Errorf("the task's env: %w", err)
	}
	if len(block) > MaxSecretSize {
		return "", fmt.Errorf("the task's env is %d bytes as a block, over Docker Swarm's secret limit of %d bytes", len(block), MaxSecretSize)
	}
	in := serviceInput{argv: argv, grace: b.opts.StopTimeout, constraints: b.opts.Constraints}
	if _, err := toServiceSpec(spec, in); err != nil {
		return "", err
	}
	if in.initVolume, err = b.init.PrepareInit(ctx); err != nil {
		return "", err
	}
	if in.secretID, err = b.createSecret(ctx, spec, block); err != nil {
		return "", err
	}
	in.secretName = spec.Name
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.StopTimeout+time.Minute)
		defer cancel()
		_ = b.removeSecrets(cctx, spec.Name)
	}
	svc, _ := toServiceSpec(spec, in)
	created, err := b.cli.ServiceCreate(ctx, svc, swarm.ServiceCreateOptions{})
	if err != nil {
		cleanup()
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			return "", fmt.Errorf("a container named %s already exists", spec.Name)
		}
		return "", b.opError(ctx, "create the service "+spec.Name, err)
	}
	if err := b.awaitStart(ctx, created.ID); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.StopTimeout+time.Minute)
		defer cancel()
		_ = b.Remove(cctx, created.ID)
		return "", err
	}
	return created.ID, nil
}

// createSecret makes the secret holding the task's env block, named as
// its service. One left by a start that made no service is replaced.
func (b *Backend) createSecret(ctx context.Context, spec orchestrator.Spec, block []byte) (string, error) {
	secret := swarm.SecretSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: map[string]string{
			LabelManaged: "true", LabelTask: spec.TaskID, LabelUser: spec.UserID, LabelProfile: spec.ProfileID, LabelName: spec.Name,
		}},
		Data: block,
	}
	for range 2 {
		created, err := b.cli.SecretCreate(ctx, secret)
		if err == nil {
			return created.ID, nil
		}
		if !cerrdefs.IsConflict(err) && !cerrdefs.IsAlreadyExists(err) {
			return "", b.opError(ctx, "create the env secret of "+spec.Name, err)
		}
		if _, _, err := b.cli.ServiceInspectWithRaw(ctx, spec.Name, swarm.ServiceInspectOptions{}); !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("a container named %s already exists", spec.Name)
		}
		if err := b.removeSecrets(ctx, spec.Name); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("a container named %s already exists", spec.Name)
}

// awaitStart waits until the service's task runs or has ended.
func (b *Backend) awaitStart(ctx context.Context, id string) error {
	deadline := time.Now().Add(b.opts.StartTimeout)
	for {
		t, err := b.firstTask(ctx, id)
		if err != nil {
			return err
		}
		if t != nil {
			switch s := t.Status.State; {
			case s == swarm.TaskStateRejected:
				return fmt.Errorf("not started: Docker Swarm rejected its task: %s", t.Status.Err)
			case s == swarm.TaskStateFailed && t.Status.Message == taskStarting:
				// The runtime could not start the container (no such
				// user; on a node without the init's volume, no init).
				return fmt.Errorf("not started: Docker Swarm could not start its container: %s", t.Status.Err)
			case state(t) == orchestrator.StateRunning || state(t) == orchestrator.StateExited:
				return nil
			}
		}
		if time.Now().After(deadline) {
			why := "no task yet"
			if t != nil {
				why = fmt.Sprintf("its task is %s: %s", t.Status.State, firstOf(t.Status.Err, t.Status.Message))
			}
			return fmt.Errorf("not started: Docker Swarm did not run it within %s (%s)", b.opts.StartTimeout, why)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// Wait polls the service's task until it has ended and returns the exit
// code of its container. A task that ended without a container (rejected,
// or its node gone) is an error saying so.
func (b *Backend) Wait(ctx context.Context, id string) (int, error) {
	for {
		t, err := b.firstTask(ctx, id)
		if err != nil {
			return 0, err
		}
		if state(t) == orchestrator.StateExited {
			if cs := t.Status.ContainerStatus; cs != nil && cs.ContainerID != "" {
				return cs.ExitCode, nil
			}
			return 0, fmt.Errorf("the task of service %s ended %s without a container: %s", id, t.Status.State, firstOf(t.Status.Err, t.Status.Message))
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return 0, err
		}
	}
}

// Stop shuts the task down, SIGTERM then SIGKILL after grace (the
// backend's StopTimeout if grace <= 0), by an update of its service, and
// returns once it has ended. See the package doc.
func (b *Backend) Stop(ctx context.Context, id string, grace time.Duration) error {
	if grace <= 0 {
		grace = b.opts.StopTimeout
	}
	for try := 0; ; try++ {
		svc, _, err := b.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return b.opError(ctx, "stop service "+id, err)
		}
		spec := svc.Spec
		if spec.TaskTemplate.Placement != nil && slices.Contains(spec.TaskTemplate.Placement.Constraints, stopConstraint) {
			break // stopped already, or being stopped
		}
		if t, err := b.firstTask(ctx, id); err != nil || state(t) == orchestrator.StateExited {
			return ignoreGone(err)
		}
		spec.TaskTemplate.ContainerSpec.StopGracePeriod = &grace
		if spec.TaskTemplate.Placement == nil {
			spec.TaskTemplate.Placement = &swarm.Placement{}
		}
		spec.TaskTemplate.Placement.Constraints = append(spec.TaskTemplate.Placement.Constraints, stopConstraint)
		_, err = b.cli.ServiceUpdate(ctx, id, svc.Version, spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			break
		}
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		// Another update came first (out of sequence): read it again.
		if try >= 3 {
			return b.opError(ctx, "stop service "+id, err)
		}
	}
	if _, err := b.Wait(ctx, id); err != nil && (ctx.Err() != nil || errors.Is(err, runner.ErrUnavailable)) {
		return err
	}
	return nil
}

// Remove removes the service, which shuts its task down with its grace
// period, waits until Swarm has removed its task, and removes its secret.
// A service that is gone is no error.
func (b *Backend) Remove(ctx context.Context, id string) error {
	svc, _, err := b.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return b.opError(ctx, "remove service "+id, err)
	}
	tasks, err := b.tasks(ctx, id)
	if err != nil && !errors.Is(err, orchestrator.ErrContainerNotFound) {
		return err
	}
	if err := b.cli.ServiceRemove(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
		return b.opError(ctx, "remove service "+id, err)
	}
	if err := b.awaitContainersGone(ctx, id, tasks); err != nil {
		return err
	}
	return b.removeSecrets(ctx, svc.Spec.Name)
}

// awaitContainersGone waits until the containers of the removed service's
// tasks are removed (Swarm's agent stops and removes them after the
// service), at most the grace period and a minute. The manager cannot see
// other nodes' containers: only those on its own engine are awaited.
func (b *Backend) awaitContainersGone(ctx context.Context, id string, tasks []swarm.Task) error {
	limit := b.opts.StopTimeout + time.Minute
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, t := range tasks {
		cs := t.Status.ContainerStatus
		if cs == nil || cs.ContainerID == "" {
			continue
		}
		resC, errC := b.cli.ContainerWait(wctx, cs.ContainerID, container.WaitConditionRemoved)
		select {
		case <-resC:
		case err := <-errC:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() != nil {
				return fmt.Errorf("remove service %s: the container of its task is still there after %s", id, limit)
			}
			if !cerrdefs.IsNotFound(err) {
				return b.opError(ctx, "await the removal of the container of service "+id, err)
			}
		}
	}
	return nil
}

// removeSecrets removes the env secrets of the service named name.
func (b *Backend) removeSecrets(ctx context.Context, name string) error {
	list, err := b.cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelName+"="+name))})
	if err != nil {
		return b.opError(ctx, "list the env secrets of "+name, err)
	}
	for _, s := range list {
		if err := b.cli.SecretRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
			return b.opError(ctx, "remove the env secret of "+name, err)
		}
	}
	return nil
}

// List returns every service of envvault's on the swarm, in the state of
// its first task. It also removes env secrets whose service does not
// exist and that are older than the start timeout (a start cut short
// between the two).
func (b *Backend) List(ctx context.Context) ([]orchestrator.Container, error) {
	svcs, err := b.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))})
	if err != nil {
		return nil, b.opError(ctx, "list envvault's services", err)
	}
	out := make([]orchestrator.Container, 0, len(svcs))
	names := map[string]bool{}
	for _, s := range svcs {
		tasks, err := b.tasks(ctx, s.ID)
		if errors.Is(err, orchestrator.ErrContainerNotFound) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, err
		}
		names[s.Spec.Name] = true
		out = append(out, orchestrator.Container{ID: s.ID, Name: s.Spec.Name, TaskID: s.Spec.Labels[LabelTask], State: state(first(tasks))})
	}
	return out, b.sweepSecrets(ctx, names)
}

func (b *Backend) sweepSecrets(ctx context.Context, services map[string]bool) error {
	list, err := b.cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))})
	if err != nil {
		return b.opError(ctx, "list envvault's env secrets", err)
	}
	for _, s := range list {
		if !services[s.Spec.Labels[LabelName]] && time.Since(s.CreatedAt) > b.opts.StartTimeout {
			if _, _, err := b.cli.ServiceInspectWithRaw(ctx, s.Spec.Labels[LabelName], swarm.ServiceInspectOptions{}); cerrdefs.IsNotFound(err) {
				_ = b.cli.SecretRemove(ctx, s.ID)
			}
		}
	}
	return nil
}

// Env returns no line: the env is in the service's secret, whose data no
// API gives back; the vault gives the values to mask after a restart.
// Returns an error wrapping ErrContainerNotFound for a service that is
// gone.
func (b *Backend) Env(ctx context.Context, id string) ([]string, error) {
	if _, _, err := b.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{}); err != nil {
		return nil, b.opError(ctx, "inspect service "+id, err)
	}
	return nil, nil
}

// tasks lists the tasks of service id.
func (b *Backend) tasks(ctx context.Context, id string) ([]swarm.Task, error) {
	tasks, err := b.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
	if err != nil {
		return nil, b.opError(ctx, "list the tasks of service "+id, err)
	}
	return tasks, nil
}

// firstTask is the service's first task (nil if Swarm has made none yet);
// an error wrapping ErrContainerNotFound if the service is gone.
func (b *Backend) firstTask(ctx context.Context, id string) (*swarm.Task, error) {
	tasks, err := b.tasks(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		if _, _, err := b.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{}); err != nil {
			return nil, b.opError(ctx, "inspect service "+id, err)
		}
	}
	return first(tasks), nil
}

// opError is the backend's error for a failed request: the context's, a
// missing service (ErrContainerNotFound), an engine that does not answer
// (runner.ErrUnavailable), else what the engine said, which holds no
// value: no value is in anything the backend sends but the secret's data.
func (b *Backend) opError(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w", what, orchestrator.ErrContainerNotFound)
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: Docker Engine is not reachable at %s: %w", what, b.cli.DaemonHost(), runner.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func ignoreGone(err error) error {
	if errors.Is(err, orchestrator.ErrContainerNotFound) {
		return nil
	}
	return err
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
