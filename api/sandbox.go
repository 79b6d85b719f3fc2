package api

import (
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// sandboxJSON is a profile's sandbox request, in requests and responses:
// 0, "" or absent asks for the operator's default.
type sandboxJSON struct {
	User           string   `json:"user"`
	MemoryMB       int64    `json:"memory_mb"`
	CPUMillis      int64    `json:"cpu_millis"`
	PidsLimit      int64    `json:"pids_limit"`
	CapAdd         []string `json:"cap_add"`
	Network        string   `json:"network"`
	WritableRootfs bool     `json:"writable_rootfs"`
	EnvDelivery    string   `json:"env_delivery"`
}

func newSandboxJSON(s vault.Sandbox) sandboxJSON {
	return sandboxJSON{User: s.User, MemoryMB: s.MemoryMB, CPUMillis: s.CPUMillis, PidsLimit: s.PidsLimit,
		CapAdd: nonNil(s.CapAdd), Network: s.Network, WritableRootfs: s.WritableRootfs, EnvDelivery: s.EnvDelivery}
}

func (s *sandboxJSON) sandbox() vault.Sandbox {
	if s == nil {
		return vault.Sandbox{}
	}
	return vault.Sandbox{User: s.User, MemoryMB: s.MemoryMB, CPUMillis: s.CPUMillis, PidsLimit: s.PidsLimit,
		CapAdd: s.CapAdd, Network: s.Network, WritableRootfs: s.WritableRootfs, EnvDelivery: s.EnvDelivery}
}

// taskSandboxJSON is what a task's container got: its profile's request
// under the operator's policy, and the settings every container has.
type taskSandboxJSON struct {
	User            string   `json:"user"`
	MemoryMB        int64    `json:"memory_mb"`
	CPUMillis       int64    `json:"cpu_millis"`
	PidsLimit       int64    `json:"pids_limit"`
	CapDrop         []string `json:"cap_drop"`
	CapAdd          []string `json:"cap_add"`
	Network         string   `json:"network"`
	ReadOnlyRootfs  bool     `json:"read_only_rootfs"`
	Tmpfs           []string `json:"tmpfs"`
	NoNewPrivileges bool     `json:"no_new_privileges"`
	Privileged      bool     `json:"privileged"`
	EnvDelivery     string   `json:"env_delivery"`
}

func newTaskSandboxJSON(s *vault.SandboxSettings) *taskSandboxJSON {
	if s == nil {
		return nil
	}
	out := &taskSandboxJSON{
		User: s.User, MemoryMB: s.MemoryMB, CPUMillis: s.CPUMillis, PidsLimit: s.PidsLimit,
		CapDrop: []string{"ALL"}, CapAdd: nonNil(s.CapAdd), Network: s.Network, ReadOnlyRootfs: s.ReadOnlyRootfs,
		Tmpfs: []string{runner.TmpDir}, NoNewPrivileges: true, Privileged: false, EnvDelivery: s.EnvDelivery,
	}
	if out.EnvDelivery == "" {
		// Started before env_delivery existed: its env was the
		// container's configuration.
		out.EnvDelivery = vault.EnvDeliveryEnv
	}
	return out
}
