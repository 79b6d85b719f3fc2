package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	dockerclient "github.com/docker/docker/client"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/dockerbackend"
	"github.com/envvault/envvault/orchestrator/swarmbackend"
	"github.com/envvault/envvault/runner"
)

// Task backends (--backend).
const (
	backendDocker = "docker"
	backendSwarm  = "swarm"
)

// backendConfig is the engine a worker runs tasks on.
type backendConfig struct {
	// Name is --backend, BACKEND: docker (default) or swarm.
	Name string
	// Constraints are --swarm-constraint (repeatable), SWARM_CONSTRAINT
	// (comma-separated): Swarm placement constraints on every task.
	Constraints []string
	// droppedNone: checkBackend took none out of --networks.
	droppedNone bool
}

// backendFlags are the flags that choose the task backend (dev, serve,
// runner).
func backendFlags(fs *flag.FlagSet, c *Config) {
	b := &c.Tasks.Backend
	b.Name = backendDocker
	fs.Func("backend", "engine the task worker runs containers on: docker (the Docker Engine of DOCKER_HOST; default) or swarm "+
		"(services on the Docker Swarm whose manager DOCKER_HOST is; see README \"Backends\")", func(s string) error {
		s = strings.TrimSpace(s)
		if s != backendDocker && s != backendSwarm {
			return fmt.Errorf("%q is neither %s nor %s", s, backendDocker, backendSwarm)
		}
		b.Name = s
		return nil
	})
	fs.Func("swarm-constraint", "Swarm placement constraint on every task with --backend swarm, such as node.labels.pool==agents "+
		"(repeatable; comma-separated in SWARM_CONSTRAINT)", func(s string) error {
		for _, one := range strings.Split(s, ",") {
			one = strings.TrimSpace(one)
			if err := swarmbackend.ValidateConstraint(one); err != nil {
				return err
			}
			b.Constraints = append(b.Constraints, one)
		}
		return nil
	})
}

// checkBackend refuses --swarm-constraint without --backend swarm, and
// with swarm drops the network mode none from the networks a profile may
// choose (Swarm cannot attach a service to it; newBackend logs it),
// refusing a policy left with none.
func (c *Config) checkBackend() error {
	b, p := &c.Tasks.Backend, &c.Tasks.Sandbox
	if b.Name != backendSwarm {
		if len(b.Constraints) > 0 {
			return fmt.Errorf("--swarm-constraint (SWARM_CONSTRAINT) needs --backend swarm")
		}
		return nil
	}
	if !slices.Contains(p.Networks, "none") {
		return nil
	}
	p.Networks = slices.DeleteFunc(slices.Clone(p.Networks), func(n string) bool { return n == "none" })
	if len(p.Networks) == 0 {
		return fmt.Errorf("--backend swarm: --networks allows only none, which Docker Swarm services cannot join; allow bridge or a swarm network")
	}
	b.droppedNone = true
	return nil
}

// newBackend is the task backend of --backend on the engine cli talks to.
func (m *Main) newBackend(cli *dockerclient.Client, init string) (orchestrator.Backend, error) {
	if m.Config.Tasks.Backend.Name == backendSwarm {
		if m.Config.Tasks.Backend.droppedNone {
			m.logger.Warn("--backend swarm: the network mode none is not available to Swarm services; profiles may choose only these networks",
				"networks", m.Config.Tasks.Sandbox.Networks)
		}
		b, err := swarmbackend.New(cli, swarmbackend.Options{Constraints: m.Config.Tasks.Backend.Constraints, InitPath: init})
		if err != nil {
			return nil, fmt.Errorf("--swarm-constraint: %w", err)
		}
		return b, nil
	}
	return dockerbackend.New(runner.New(cli, runner.Options{InitPath: init})), nil
}
