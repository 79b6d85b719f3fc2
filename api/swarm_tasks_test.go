package api

import (
	"context"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/swarmbackend"
)

// Task backends the end-to-end task tests run on (taskEnvOptions.backend).
const (
	onDocker = "docker"
	onSwarm  = "swarm"
)

// forEachTaskBackend runs fn on the Docker backend and on the Swarm
// backend (which skips without a swarm, or fails in CI).
func forEachTaskBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	t.Run(onDocker, func(t *testing.T) { fn(t, onDocker) })
	t.Run(onSwarm, func(t *testing.T) { fn(t, onSwarm) })
}

// newSwarmBackend is the Swarm backend of a taskEnv, with an init of its
// own; the test fails if anything of its users is left on the swarm.
func (e *taskEnv) newSwarmBackend(t *testing.T) orchestrator.Backend {
	t.Helper()
	testenv.RequireSwarm(t)
	b := testimage.NewSwarmBackend(t, e.cli, swarmbackend.Options{})
	e.swarm = true
	t.Cleanup(func() {
		e.mu.Lock()
		users := append([]string(nil), e.users...)
		e.mu.Unlock()
		for _, u := range users {
			if left := testenv.SwarmLeft(t, e.cli, swarmbackend.LabelUser+"="+u); len(left) > 0 {
				t.Errorf("left behind on the swarm: %v", left)
				testenv.RemoveSwarmObjects(t, e.cli, swarmbackend.LabelUser+"="+u)
			}
		}
	})
	return b
}

// ctr is the engine's container of a task's container id: the id itself
// on Docker, the container of the service's task on Swarm.
func (e *taskEnv) ctr(id string) string {
	e.t.Helper()
	if !e.swarm {
		return id
	}
	tasks, err := e.cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
	if err != nil || len(tasks) == 0 || tasks[0].Status.ContainerStatus == nil {
		e.t.Fatalf("the task of service %s: %d tasks, %v", id, len(tasks), err)
	}
	return tasks[0].Status.ContainerStatus.ContainerID
}

// awaitServiceGone waits until the service and its task's container are
// removed (Swarm has no wait for either).
func (e *taskEnv) awaitServiceGone(id string) {
	e.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(awaitTimeout)
	for {
		_, _, err := e.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		ctrs, lerr := e.cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+id))})
		if cerrdefs.IsNotFound(err) && lerr == nil && len(ctrs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("service %s not removed: %v; %d containers, %v", id, err, len(ctrs), lerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
