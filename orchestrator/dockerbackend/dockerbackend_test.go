package dockerbackend

import (
	"reflect"
	"testing"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

func TestState(t *testing.T) {
	tests := []struct {
		docker string
		want   orchestrator.State
	}{
		{"created", orchestrator.StateCreated},
		{"running", orchestrator.StateRunning},
		{"paused", orchestrator.StateRunning},
		{"restarting", orchestrator.StateRunning},
		{"exited", orchestrator.StateExited},
		{"dead", orchestrator.StateExited},
		{"removing", orchestrator.StateExited},
		{"", orchestrator.StateUnknown},
		{"something new", orchestrator.StateUnknown},
	}
	for _, tt := range tests {
		if got := state(tt.docker); got != tt.want {
			t.Errorf("state(%q) = %v, want %v", tt.docker, got, tt.want)
		}
	}
}

func TestToSpec(t *testing.T) {
	base := orchestrator.Spec{
		TaskID: "tsk_1", UserID: "usr_1", ProfileID: "prf_1", Name: orchestrator.ContainerName("tsk_1", 2),
		Image: "img", Command: []string{"run"}, SetupCommands: []string{"true"}, Env: map[string]string{"A": "b"},
	}
	want := runner.Spec{
		TaskID: "tsk_1", UserID: "usr_1", ProfileID: "prf_1", Name: "envvault-tsk_1-2",
		Image: "img", Command: []string{"run"}, SetupCommands: []string{"true"}, Env: map[string]string{"A": "b"},
	}
	tests := []struct {
		name    string
		sandbox vault.SandboxSettings
		want    func(*runner.Spec)
	}{
		{"zero settings: env delivery, no limits", vault.SandboxSettings{}, func(s *runner.Spec) {
			s.EnvDelivery = runner.DeliveryEnv
		}},
		{"units and every field", vault.SandboxSettings{
			User: "1000:1000", MemoryMB: 256, CPUMillis: 1500, PidsLimit: 64, CapAdd: []string{"NET_BIND_SERVICE"},
			Network: "none", ReadOnlyRootfs: true, EnvDelivery: vault.EnvDeliveryEnv,
		}, func(s *runner.Spec) {
			s.Hardening = runner.Hardening{
				User: "1000:1000", MemoryBytes: 256 << 20, NanoCPUs: 1_500_000_000, PidsLimit: 64,
				CapAdd: []string{"NET_BIND_SERVICE"}, Network: "none", ReadOnlyRootfs: true,
			}
			s.EnvDelivery = runner.DeliveryEnv
		}},
		{"stdin delivery", vault.SandboxSettings{EnvDelivery: vault.EnvDeliveryStdin}, func(s *runner.Spec) {
			s.EnvDelivery = runner.DeliveryStdin
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			in.Sandbox = tt.sandbox
			w := want
			tt.want(&w)
			if got := toSpec(in); !reflect.DeepEqual(got, w) {
				t.Errorf("toSpec =\n%+v\nwant\n%+v", got, w)
			}
		})
	}
}
