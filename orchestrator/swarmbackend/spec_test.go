package swarmbackend

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

func TestState(t *testing.T) {
	tests := []struct {
		swarm swarm.TaskState
		want  orchestrator.State
	}{
		{swarm.TaskStateNew, orchestrator.StateCreated},
		{swarm.TaskStatePending, orchestrator.StateCreated},
		{swarm.TaskStateAssigned, orchestrator.StateCreated},
		{swarm.TaskStateAccepted, orchestrator.StateCreated},
		{swarm.TaskStatePreparing, orchestrator.StateCreated},
		{swarm.TaskStateReady, orchestrator.StateCreated},
		{swarm.TaskStateStarting, orchestrator.StateCreated},
		{swarm.TaskStateRunning, orchestrator.StateRunning},
		{swarm.TaskStateComplete, orchestrator.StateExited},
		{swarm.TaskStateFailed, orchestrator.StateExited},
		{swarm.TaskStateShutdown, orchestrator.StateExited},
		{swarm.TaskStateRejected, orchestrator.StateExited},
		{swarm.TaskStateOrphaned, orchestrator.StateExited},
		{swarm.TaskStateRemove, orchestrator.StateExited},
		{"", orchestrator.StateUnknown},
		{"something new", orchestrator.StateUnknown},
	}
	for _, tt := range tests {
		task := &swarm.Task{Status: swarm.TaskStatus{State: tt.swarm}}
		if got := state(task); got != tt.want {
			t.Errorf("state(%q) = %v, want %v", tt.swarm, got, tt.want)
		}
	}
	if got := state(nil); got != orchestrator.StateCreated {
		t.Errorf("state of a service without a task = %v, want created", got)
	}
}

func TestFirst(t *testing.T) {
	now := time.Now()
	tasks := []swarm.Task{{ID: "later"}, {ID: "first"}, {ID: "last"}}
	tasks[0].CreatedAt, tasks[1].CreatedAt, tasks[2].CreatedAt = now.Add(time.Second), now, now.Add(time.Minute)
	if got := first(tasks); got == nil || got.ID != "first" {
		t.Errorf("first = %+v", got)
	}
	if first(nil) != nil {
		t.Error("first of none is not nil")
	}
}

func TestValidateConstraint(t *testing.T) {
	for _, ok := range []string{"node.role==worker", "node.role!=manager", "node.labels.pool==agents", "engine.labels.zone == eu-1",
		"node.hostname==vm", "node.platform.arch==x86_64"} {
		if err := ValidateConstraint(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "node.role", "node.role=worker", "node.color==red", "labels.pool==a", "node.labels.==a",
		"node.role==", "node.role==a==b", "node.role<=worker"} {
		if err := ValidateConstraint(bad); err == nil || !strings.Contains(err.Error(), "placement constraint") {
			t.Errorf("%q: %v, want a refusal naming the placement constraint", bad, err)
		}
	}
	if _, err := New(nil, Options{Constraints: []string{"node.role==worker", "nope"}}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("New with a bad constraint: %v", err)
	}
}

func TestSecretOwner(t *testing.T) {
	for user, want := range map[string]string{
		"": "0 0 -r--------", "1000": "1000 0 -r--------", "1000:2000": "1000 2000 -r--------",
		"nobody": "0 0 -r--r--r--", "1000:staff": "1000 0 -r--------",
	} {
		uid, gid, mode := secretOwner(user)
		if got := uid + " " + gid + " " + mode.String(); got != want {
			t.Errorf("secretOwner(%q) = %s, want %s", user, got, want)
		}
	}
}

// TestToServiceSpec checks the hardening and delivery a service carries,
// and that nothing of the env stands in it.
func TestToServiceSpec(t *testing.T) {
	const canary = "canary-value-5b1e"
	s := orchestrator.Spec{
		TaskID: "tsk_1", UserID: "usr_1", ProfileID: "prf_1", Name: "envvault-tsk_1-1", Image: "img",
		Env: map[string]string{"TOKEN": canary},
		Sandbox: vault.SandboxSettings{User: "1000:1000", MemoryMB: 256, CPUMillis: 1500, PidsLimit: 64,
			CapAdd: []string{"NET_BIND_SERVICE"}, Network: "bridge", ReadOnlyRootfs: true, EnvDelivery: vault.EnvDeliveryEnv},
	}
	in := serviceInput{argv: []string{"/envprobe", "env"}, initVolume: "vol", secretID: "sec1", secretName: "envvault-tsk_1-1",
		grace: 7 * time.Second, constraints: []string{"node.role==worker"}}
	got, err := toServiceSpec(s, in)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), canary) {
		t.Fatalf("the service spec holds the env value: %s", raw)
	}
	c, tt := got.TaskTemplate.ContainerSpec, got.TaskTemplate
	checks := map[string]bool{
		"name":          got.Name == s.Name,
		"labels":        got.Labels[LabelManaged] == "true" && got.Labels[LabelTask] == "tsk_1" && c.Labels[LabelUser] == "usr_1",
		"one replica":   got.Mode.Replicated != nil && *got.Mode.Replicated.Replicas == 1,
		"no restart":    tt.RestartPolicy.Condition == swarm.RestartPolicyConditionNone,
		"init command":  strings.Join(c.Command, " ") == runner.InitProgram+" -f "+SecretPath+" --" && strings.Join(c.Args, " ") == "/envprobe env",
		"no env":        len(c.Env) == 0,
		"secret":        len(c.Secrets) == 1 && c.Secrets[0].SecretID == "sec1" && c.Secrets[0].File.Name == SecretTarget && c.Secrets[0].File.UID == "1000" && c.Secrets[0].File.Mode == 0o400,
		"user":          c.User == "1000:1000",
		"caps":          strings.Join(c.CapabilityDrop, ",") == "ALL" && strings.Join(c.CapabilityAdd, ",") == "NET_BIND_SERVICE",
		"read-only":     c.ReadOnly,
		"grace":         c.StopGracePeriod != nil && *c.StopGracePeriod == 7*time.Second,
		"init volume":   len(c.Mounts) == 2 && c.Mounts[0].Source == "vol" && c.Mounts[0].ReadOnly && c.Mounts[0].Target == runner.InitDir,
		"tmpfs":         c.Mounts[1].Target == runner.TmpDir && c.Mounts[1].TmpfsOptions.SizeBytes == 256<<20,
		"limits":        tt.Resources.Limits.MemoryBytes == 256<<20 && tt.Resources.Limits.NanoCPUs == 1_500_000_000 && tt.Resources.Limits.Pids == 64,
		"constraints":   strings.Join(tt.Placement.Constraints, ",") == "node.role==worker",
		"bridge":        len(tt.Networks) == 0,
		"logs kept":     tt.LogDriver != nil && tt.LogDriver.Name == "json-file",
		"never privile": c.Privileges == nil,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s: not as wanted in %s", name, raw)
		}
	}
	s.Sandbox.Network = "none"
	if _, err := toServiceSpec(s, in); err == nil || !strings.Contains(err.Error(), "network none") {
		t.Errorf("network none: %v", err)
	}
	s.Sandbox.Network = "my-overlay"
	if got, err := toServiceSpec(s, in); err != nil || len(got.TaskTemplate.Networks) != 1 || got.TaskTemplate.Networks[0].Target != "my-overlay" {
		t.Errorf("a named network: %+v, %v", got.TaskTemplate.Networks, err)
	}
}
