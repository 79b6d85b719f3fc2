package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// taskConfig is the operator's settings for task containers (dev, serve,
// runner): the sandbox policy every profile is checked against, and (item
// 2 of issue 10) how much work one worker takes on.
type taskConfig struct {
	Sandbox vault.SandboxPolicy

	MaxRunning       int // --max-running, MAX_RUNNING
	UserShare        int // --user-share, USER_SHARE (percent)
	MaxQueuedPerUser int // --max-queued-per-user, MAX_QUEUED_PER_USER
	MaxLogMiB        int // --max-task-log-mib, MAX_TASK_LOG_MIB
	// SecretRequestTTL is --secret-request-ttl, SECRET_REQUEST_TTL: how
	// long a task's secret request waits for its answer.
	SecretRequestTTL time.Duration
	// EnvInit is --env-init, ENV_INIT: the envvault-init program that
	// stdin env delivery puts in task containers; "" looks for
	// envvault-init beside the envvault executable, then on PATH.
	EnvInit string
	// Backend is --backend and --swarm-constraint (backend.go).
	Backend backendConfig
	// OAuth2RefreshMargin is --oauth2-refresh-margin, OAuth2AllowNetworks
	// --oauth2-allow-network (oauth2.go).
	OAuth2RefreshMargin time.Duration
	OAuth2AllowNetworks []netip.Prefix
	// TaskAPI is --task-api-url and --task-credential-ttl (task_api.go).
	TaskAPI taskAPIConfig
}

// slotFlags are the flags that bound a worker's work and a user's queue.
func slotFlags(fs *flag.FlagSet, c *Config) {
	t := &c.Tasks
	fs.IntVar(&t.MaxRunning, "max-running", orchestrator.DefaultMaxRunning(), "most task containers this worker starts or runs at once (default: two per core); further tasks wait queued")
	fs.IntVar(&t.UserShare, "user-share", orchestrator.DefaultUserSharePercent, "percent of --max-running one user's tasks may hold (at least one task), so that others' tasks still start")
	fs.IntVar(&t.MaxQueuedPerUser, "max-queued-per-user", orchestrator.DefaultMaxQueuedPerUser, "most queued tasks one user may have; creating another answers 429 with Retry-After")
	fs.IntVar(&t.MaxLogMiB, "max-task-log-mib", orchestrator.DefaultMaxLogBytes>>20, fmt.Sprintf("MiB of one task container's output (masked) stored, 1 to %d; the rest is dropped, after a line saying so", maxLogMiB))
	fs.DurationVar(&t.SecretRequestTTL, "secret-request-ttl", vault.DefaultSecretRequestTTL, "how long a task waiting for required secrets waits for them before it fails (1s to 720h)")
	fs.StringVar(&t.EnvInit, "env-init", "", "path of the static envvault-init program for env delivery stdin (default: envvault-init beside this executable, else on PATH)")
}

// maxLogMiB is the largest --max-task-log-mib: 64 GiB of one container's
// output.
const maxLogMiB = 64 << 10

// initName is the file name of the init program looked for by default.
const initName = "envvault-init"

// envInit returns the init program the runner is given: --env-init, else
// envvault-init beside the executable, else on PATH; "" if none is found
// (tasks with env delivery stdin then fail saying so).
func (t taskConfig) envInit() string {
	if t.EnvInit != "" {
		return t.EnvInit
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), initName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(initName); err == nil {
		return p
	}
	return ""
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
	p.EnvDeliveries = vault.DefaultEnvDeliveries
	deliveriesSet := false
	fs.Func("env-deliveries", "comma-separated env deliveries a profile may choose, the first the default for profiles that name none (default stdin,env; stdin keeps values out of docker inspect)", func(s string) error {
		if !deliveriesSet {
			p.EnvDeliveries, deliveriesSet = nil, true
		}
		p.EnvDeliveries = append(p.EnvDeliveries, splitNames(s)...)
		return nil
	})
	fs.BoolVar(&p.AllowWritableRootfs, "allow-writable-rootfs", false, "let a profile opt out of the read-only root filesystem (its writes are not bounded by any limit)")
	fs.BoolVar(&p.ForbidRoot, "forbid-root", false, "refuse profiles whose user is root, gid 0 or a name, and run profiles without a user as 65534:65534")
}

// checkTasks checks the sandbox policy and the slot settings of the
// commands that take them.
func (c *Config) checkTasks() error {
	if err := c.checkBackend(); err != nil { // backend.go
		return err
	}
	t := c.Tasks
	switch {
	case t.MaxRunning < 1:
		return fmt.Errorf("--max-running (MAX_RUNNING) is %d: it must be at least 1", t.MaxRunning)
	case t.UserShare < 1 || t.UserShare > 100:
		return fmt.Errorf("--user-share (USER_SHARE) is %d: it must be a percent from 1 to 100", t.UserShare)
	case t.MaxQueuedPerUser < 1:
		return fmt.Errorf("--max-queued-per-user (MAX_QUEUED_PER_USER) is %d: it must be at least 1", t.MaxQueuedPerUser)
	case t.MaxLogMiB < 1 || t.MaxLogMiB > maxLogMiB:
		return fmt.Errorf("--max-task-log-mib (MAX_TASK_LOG_MIB) is %d: it must be from 1 to %d", t.MaxLogMiB, maxLogMiB)
	case t.SecretRequestTTL < time.Second || t.SecretRequestTTL > 720*time.Hour:
		return fmt.Errorf("--secret-request-ttl (SECRET_REQUEST_TTL) is %s: it must be from 1s to 720h", t.SecretRequestTTL)
	}
	if err := t.TaskAPI.check(); err != nil { // task_api.go
		return err
	}
	if err := c.Tasks.Sandbox.Check(); err != nil {
		return fmt.Errorf("%w (see --default-memory-mb, --allowed-caps, --networks, --env-deliveries and the other sandbox flags)", err)
	}
	return nil
}
