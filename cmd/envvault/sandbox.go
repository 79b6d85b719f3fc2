package main

import (
	"flag"
	"fmt"
	"runtime"

	"github.com/envvault/envvault/vault"
)

// taskConfig is the operator's settings for task containers (dev, serve,
// runner): the sandbox policy every profile is checked against, and (item
// 2 of issue 10) how much work one worker takes on.
type taskConfig struct {
	Sandbox vault.SandboxPolicy
}

// sandboxFlags are the flags of the sandbox policy. Give every process on
// one database the same values: serve checks profiles against them, and
// each worker checks again at every start.
func sandboxFlags(fs *flag.FlagSet, c *Config) {
	p := &c.Tasks.Sandbox
	maxCPU := int64(runtime.NumCPU()) * 1000
	fs.Int64Var(&p.DefaultMemoryMB, "default-memory-mb", vault.DefaultMemoryMB, "memory limit of a task container in MiB unless its profile asks for another (swap is not added on top)")
	fs.Int64Var(&p.MaxMemoryMB, "max-memory-mb", vault.DefaultMaxMemoryMB, "most memory a profile may ask for, in MiB (422 above)")
	fs.Int64Var(&p.DefaultCPUMillis, "default-cpu-millis", vault.DefaultCPUMillis, "CPU limit of a task container in thousandths of a CPU unless its profile asks for another")
	fs.Int64Var(&p.MaxCPUMillis, "max-cpu-millis", maxCPU, "most CPU a profile may ask for, in thousandths of a CPU (default: this host's cores)")
	fs.Int64Var(&p.DefaultPids, "default-pids", vault.DefaultPidsLimit, "most processes and threads in a task container unless its profile asks for another")
	fs.Int64Var(&p.MaxPids, "max-pids", vault.DefaultMaxPids, "most processes and threads a profile may ask for (422 above)")
	fs.Func("allowed-caps", "comma-separated Linux capabilities (without CAP_) a profile may add back after all are dropped; none by default", func(s string) error {
		p.AllowedCaps = append(p.AllowedCaps, splitNames(s)...)
		return nil
	})
	p.Networks = vault.DefaultNetworks
	networksSet := false
	fs.Func("networks", "comma-separated network modes a profile may choose, the first the default (default bridge,none; never host)", func(s string) error {
		if !networksSet {
			p.Networks, networksSet = nil, true
		}
		p.Networks = append(p.Networks, splitNames(s)...)
		return nil
	})
	fs.BoolVar(&p.AllowWritableRootfs, "allow-writable-rootfs", false, "let a profile opt out of the read-only root filesystem (its writes are not bounded by any limit)")
	fs.BoolVar(&p.ForbidRoot, "forbid-root", false, "refuse profiles whose user is root, gid 0 or a name, and run profiles without a user as 65534:65534")
}

// checkSandbox checks the sandbox policy of the commands that take it.
func (c *Config) checkSandbox() error {
	if err := c.Tasks.Sandbox.Check(); err != nil {
		return fmt.Errorf("%w (see --default-memory-mb, --allowed-caps, --networks and the other sandbox flags)", err)
	}
	return nil
}
