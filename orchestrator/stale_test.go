package orchestrator

import (
	"slices"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func TestStaleNames(t *testing.T) {
	started := []EnvSource{
		{Name: "A", Source: SourceSecret, SecretID: "sec_a", Scope: "all", Version: 1},
		{Name: "B", Source: SourceSecret, SecretID: "sec_b", Scope: "agents", Version: 3},
		{Name: "C", Source: SourceSecret, SecretID: "sec_c", Scope: "all", Version: 2},
		{Name: "P", Source: SourceProfile},
		{Name: "K", Source: SourceBaseline},
		{Name: "TASK_ID", Source: SourceTask},
	}
	same := []vault.EnvSecret{
		{Name: "A", SecretID: "sec_a", Scope: vault.ScopeAll, Version: 1},
		{Name: "B", SecretID: "sec_b", Scope: vault.ScopeAgents, Version: 3},
		{Name: "C", SecretID: "sec_c", Scope: vault.ScopeAll, Version: 2},
	}
	with := func(f func([]vault.EnvSecret) []vault.EnvSecret) []vault.EnvSecret { return f(slices.Clone(same)) }
	tests := []struct {
		name   string
		now    []vault.EnvSecret
		locked []string
		want   []string
	}{
		{"nothing changed", same, nil, nil},
		{"new version", with(func(s []vault.EnvSecret) []vault.EnvSecret { s[1].Version = 4; return s }), nil, []string{"B"}},
		{"another secret supplies the name", with(func(s []vault.EnvSecret) []vault.EnvSecret {
			s[0] = vault.EnvSecret{Name: "A", SecretID: "sec_a2", Scope: vault.ScopeAgents, Version: 1}
			return s
		}), nil, []string{"A"}},
		{"deleted or ungranted", same[1:], nil, []string{"A"}},
		{"every secret gone (profile deleted)", nil, nil, []string{"A", "B", "C"}},
		{"a new name, also one the profile or baseline set", with(func(s []vault.EnvSecret) []vault.EnvSecret {
			return append(s, vault.EnvSecret{Name: "P", SecretID: "sec_p", Version: 1}, vault.EnvSecret{Name: "NEW", SecretID: "sec_n", Version: 1})
		}), nil, []string{"NEW", "P"}},
		{"a locked name is never stale", with(func(s []vault.EnvSecret) []vault.EnvSecret {
			return append(s, vault.EnvSecret{Name: "K", SecretID: "sec_k", Version: 1})
		}), []string{"K"}, nil},
		{"sorted", with(func(s []vault.EnvSecret) []vault.EnvSecret {
			s[2].Version, s[0].Version = 9, 9
			return s
		}), nil, []string{"A", "C"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := staleNames(started, tt.now, tt.locked); !slices.Equal(got, tt.want) {
				t.Errorf("staleNames = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequeue(t *testing.T) {
	code := 3
	now := ptr(time.Unix(1700000000, 0).UTC())
	task := &Task{
		ID: "tsk_x", Status: StatusFailed, Attempt: 2, ExitCode: &code, ContainerID: "c", Error: "exited with code 3",
		Worker: "w", StopRequested: true, RestartRequested: true, StartedAt: now, FinishedAt: now,
		EnvSources: []EnvSource{{Name: "A", Source: SourceProfile}},
	}
	requeue(task)
	if task.Status != StatusQueued || task.Attempt != 3 || task.ExitCode != nil || task.ContainerID != "" || task.Error != "" ||
		task.Worker != "" || task.StopRequested || task.RestartRequested || task.StartedAt != nil || task.FinishedAt != nil {
		t.Errorf("requeued: %+v", task)
	}
	// The sources of the last container stay until the next one starts.
	if len(task.EnvSources) != 1 {
		t.Errorf("env sources dropped: %+v", task.EnvSources)
	}
}
