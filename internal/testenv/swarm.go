package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// RequireSwarm returns a client of the Docker Engine (RequireDocker) once
// the engine says it is a manager of an active swarm, so that the test can
// create services and secrets.
//
// If it is not, the test skips with the command that makes it one, or
// fails with CI=true (scripts/test makes the engine a single-node swarm
// for the run, and leaves it afterwards, when it was not in one).
func RequireSwarm(t testing.TB) client.APIClient {
	t.Helper()
	cli := RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	if info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && info.Swarm.ControlAvailable {
		return cli
	}
	msg := "Swarm tests need the Docker Engine at " + cli.DaemonHost() + " to be a Swarm manager, and its swarm state is " +
		string(info.Swarm.LocalNodeState)
	if info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
		msg = "Swarm tests need the Docker Engine at " + cli.DaemonHost() + " to be a Swarm manager; it is a worker node"
	}
	if CI() {
		t.Fatalf("%s (CI=true). scripts/test makes it one; by hand: docker swarm init --advertise-addr 127.0.0.1 (and docker swarm leave --force afterwards)", msg)
	}
	t.Skipf("%s. Run: docker swarm init --advertise-addr 127.0.0.1 (undo with: docker swarm leave --force), or run ./scripts/test, which does both; with CI=true this is a failure instead of a skip", msg)
	return nil
}

// SwarmLeft lists what carries the label (KEY=VALUE) on the engine:
// services, secrets, containers and volumes, each as "kind name". A test
// that made Swarm objects asserts that it is empty once they are removed.
func SwarmLeft(t testing.TB, cli client.APIClient, label string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", label))
	var out []string
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	for _, s := range svcs {
		out = append(out, "service "+s.Spec.Name)
	}
	secrets, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list secrets: %v", err)
	}
	for _, s := range secrets {
		out = append(out, "secret "+s.Spec.Name)
	}
	ctrs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	for _, c := range ctrs {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list volumes: %v", err)
	}
	for _, v := range vols.Volumes {
		out = append(out, "volume "+v.Name)
	}
	return out
}

// RemoveSwarmObjects removes the services and secrets that carry the
// label (KEY=VALUE): a test's cleanup after SwarmLeft has reported them,
// so that a failed test leaves nothing either.
func RemoveSwarmObjects(t testing.TB, cli client.APIClient, label string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", label))
	if svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err == nil {
		for _, s := range svcs {
			_ = cli.ServiceRemove(ctx, s.ID)
		}
	}
	if secrets, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f}); err == nil {
		for _, s := range secrets {
			_ = cli.SecretRemove(ctx, s.ID)
		}
	}
}
