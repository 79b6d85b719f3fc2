package runner

import (
	"strconv"

	"github.com/docker/docker/api/types/container"
)

// Hardening is what a task's container may do and use. Whatever it says,
// every container the runner starts has all capabilities dropped but
// CapAdd, no-new-privileges, a private IPC namespace, no host mounts, no
// devices and is never privileged; TmpDir is always a tmpfs. A zero limit
// sets none: the orchestrator fills them from the operator's policy.
type Hardening struct {
	User           string   // "" runs the image's own user
	MemoryBytes    int64    // the swap limit is the same: no swap on top
	NanoCPUs       int64    // 1e9 is one CPU
	PidsLimit      int64    // processes and threads
	CapAdd         []string // capabilities added back after dropping all
	Network        string   // network mode; "" is the engine's default (bridge)
	ReadOnlyRootfs bool
}

// TmpDir is the writable tmpfs every task container gets, also with a
// read-only root filesystem.
const TmpDir = "/tmp"

// noNewPrivileges keeps setuid binaries and file capabilities from
// raising a process's privileges.
const noNewPrivileges = "no-new-privileges:true"

// harden sets h on host. The tmpfs is as large as the memory limit (its
// pages are charged to the container's memory anyway), and nosuid, nodev.
func harden(host *container.HostConfig, h Hardening) {
	host.Privileged = false
	host.CapDrop = []string{"ALL"}
	host.CapAdd = append([]string(nil), h.CapAdd...)
	host.SecurityOpt = []string{noNewPrivileges}
	host.IpcMode = container.IPCModePrivate
	host.ReadonlyRootfs = h.ReadOnlyRootfs
	tmpfs := "rw,nosuid,nodev,mode=1777"
	if h.MemoryBytes > 0 {
		tmpfs += ",size=" + strconv.FormatInt(h.MemoryBytes, 10)
	}
	host.Tmpfs = map[string]string{TmpDir: tmpfs}
	host.NetworkMode = container.NetworkMode(h.Network)
	if h.MemoryBytes > 0 {
		host.Memory, host.MemorySwap = h.MemoryBytes, h.MemoryBytes
	}
	host.NanoCPUs = h.NanoCPUs
	if h.PidsLimit > 0 {
		pids := h.PidsLimit
		host.PidsLimit = &pids
	}
}
