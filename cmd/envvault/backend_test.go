package main

import (
	"slices"
	"strings"
	"testing"
)

func TestBackendFlags(t *testing.T) {
	t.Parallel()
	m, err := parseOnly(t, "runner", "--worker-id", "w")
	if err != nil || m.Config.Tasks.Backend.Name != backendDocker || len(m.Config.Tasks.Backend.Constraints) != 0 {
		t.Errorf("default backend %+v, %v", m.Config.Tasks.Backend, err)
	}
	m, err = parseOnly(t, "serve", "--backend", "swarm", "--swarm-constraint", "node.role==worker",
		"--swarm-constraint", "node.labels.pool==agents,engine.labels.zone!=eu")
	if err != nil {
		t.Fatal(err)
	}
	if b := m.Config.Tasks.Backend; b.Name != backendSwarm ||
		!slices.Equal(b.Constraints, []string{"node.role==worker", "node.labels.pool==agents", "engine.labels.zone!=eu"}) {
		t.Errorf("swarm flags gave %+v", b)
	}
	// Swarm services cannot join the network none: it leaves the policy.
	if n := m.Config.Tasks.Sandbox.Networks; !slices.Equal(n, []string{"bridge"}) {
		t.Errorf("networks with swarm: %v, want [bridge]", n)
	}
	if m, err := parseOnly(t, "dev", "--backend", "docker"); err != nil || !slices.Equal(m.Config.Tasks.Sandbox.Networks, []string{"bridge", "none"}) {
		t.Errorf("docker keeps none: %v, %v", m.Config.Tasks.Sandbox.Networks, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--backend", "kubernetes"}, `"kubernetes" is neither docker nor swarm`},
		{[]string{"dev", "--backend", "swarm", "--swarm-constraint", "node.color==red"}, `placement constraint "node.color==red"`},
		{[]string{"runner", "--worker-id", "w", "--swarm-constraint", "node.role==worker"}, "--swarm-constraint (SWARM_CONSTRAINT) needs --backend swarm"},
		{[]string{"serve", "--backend", "swarm", "--networks", "none"}, "--networks allows only none"},
	} {
		if _, err := parseOnly(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
