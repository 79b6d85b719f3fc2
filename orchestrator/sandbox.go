package orchestrator

import (
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// hardening is what the runner applies for a task's sandbox settings: the
// vault decides them (vault.SandboxPolicy.Settings), the runner only
// translates units.
func hardening(s *vault.SandboxSettings) runner.Hardening {
	return runner.Hardening{
		User:           s.User,
		MemoryBytes:    s.MemoryMB << 20,
		NanoCPUs:       s.CPUMillis * 1_000_000,
		PidsLimit:      s.PidsLimit,
		CapAdd:         s.CapAdd,
		Network:        s.Network,
		ReadOnlyRootfs: s.ReadOnlyRootfs,
	}
}

// delivery is the runner's env delivery for a task's sandbox settings.
func delivery(s *vault.SandboxSettings) string {
	if s.EnvDelivery == vault.EnvDeliveryStdin {
		return runner.DeliveryStdin
	}
	return runner.DeliveryEnv
}
