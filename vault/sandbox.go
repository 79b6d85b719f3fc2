package vault

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Operator defaults of the sandbox policy (SandboxPolicy), each taken when
// its field is 0 or nil. They are documented, with the reasoning, in the
// README's "Task containers" section.
const (
	DefaultMemoryMB    = 1024 // per task container; swap is not added on top
	DefaultMaxMemoryMB = 4096
	DefaultCPUMillis   = 1000 // one CPU; the maximum defaults to the host's core count
	DefaultPidsLimit   = 512  // processes and threads
	DefaultMaxPids     = 4096
	// NonRootUser is what a task runs as when the operator forbids root
	// and its profile names no user: the conventional "nobody".
	NonRootUser = "65534:65534"
)

// How a task's env reaches its process (Sandbox.EnvDelivery).
const (
	// EnvDeliveryStdin: no value stands in the container's configuration
	// (docker inspect, the engine's API and its on-disk config); a small
	// init reads the env from the container's stdin and execs the command.
	EnvDeliveryStdin = "stdin"
	// EnvDeliveryEnv: the env is the container's configured Env, as
	// `docker run --env` gives it; docker inspect shows every value.
	EnvDeliveryEnv = "env"
)

// DefaultEnvDeliveries are the env deliveries a profile may ask for
// unless the operator says otherwise; the first is the default.
var DefaultEnvDeliveries = []string{EnvDeliveryStdin, EnvDeliveryEnv}

// DefaultNetworks are the network modes a profile may ask for unless the
// operator says otherwise; the first is the default.
var DefaultNetworks = []string{"bridge", "none"}

// Capabilities are the Linux capability names a profile may ask to add
// back (without the CAP_ prefix), if the operator allows them.
var Capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
	"DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT",
	"SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
	"SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// Sandbox is what a profile asks of its task containers beyond the
// operator's defaults. A zero field asks for the default; every request
// is checked against the operator's SandboxPolicy (422 naming the field).
type Sandbox struct {
	// User is "uid[:gid]" or "name[:group]" of the image; "" runs the
	// image's own user (NonRootUser if the operator forbids root).
	User      string   `json:"user,omitempty"`
	MemoryMB  int64    `json:"memory_mb,omitempty"`
	CPUMillis int64    `json:"cpu_millis,omitempty"` // 1000 is one CPU
	PidsLimit int64    `json:"pids_limit,omitempty"`
	CapAdd    []string `json:"cap_add,omitempty"` // added back after all are dropped
	Network   string   `json:"network,omitempty"`
	// WritableRootfs opts out of the read-only root filesystem.
	WritableRootfs bool `json:"writable_rootfs,omitempty"`
	// EnvDelivery is EnvDeliveryStdin or EnvDeliveryEnv; "" takes the
	// operator's default.
	EnvDelivery string `json:"env_delivery,omitempty"`
}

// IsZero reports whether s asks for nothing but the defaults.
func (s Sandbox) IsZero() bool {
	return s.User == "" && s.MemoryMB == 0 && s.CPUMillis == 0 && s.PidsLimit == 0 &&
		len(s.CapAdd) == 0 && s.Network == "" && !s.WritableRootfs && s.EnvDelivery == ""
}

func (s Sandbox) equal(o Sandbox) bool {
	return s.User == o.User && s.MemoryMB == o.MemoryMB && s.CPUMillis == o.CPUMillis && s.PidsLimit == o.PidsLimit &&
		slices.Equal(s.CapAdd, o.CapAdd) && s.Network == o.Network && s.WritableRootfs == o.WritableRootfs &&
		s.EnvDelivery == o.EnvDelivery
}

// SandboxSettings are the settings a task's container gets: its profile's
// Sandbox with the operator's defaults filled in. Beside them every
// container has all capabilities dropped but CapAdd, no-new-privileges, a
// tmpfs /tmp, no host mounts and is never privileged (package runner).
type SandboxSettings struct {
	User           string   `json:"user"` // "" is the image's own
	MemoryMB       int64    `json:"memory_mb"`
	CPUMillis      int64    `json:"cpu_millis"`
	PidsLimit      int64    `json:"pids_limit"`
	CapAdd         []string `json:"cap_add"`
	Network        string   `json:"network"`
	ReadOnlyRootfs bool     `json:"read_only_rootfs"`
	EnvDelivery    string   `json:"env_delivery"` // "" in tasks started before it existed: env
}

// SandboxPolicy is the operator's: defaults and maxima of a task
// container's resources, what a profile may ask for, and whether root is
// allowed. Zero fields take the Default… constants.
type SandboxPolicy struct {
	DefaultMemoryMB, MaxMemoryMB   int64
	DefaultCPUMillis, MaxCPUMillis int64 // MaxCPUMillis: the host's cores × 1000 if 0
	DefaultPids, MaxPids           int64
	// AllowedCaps are the capabilities a profile may add back; none if
	// empty.
	AllowedCaps []string
	// Networks are the network modes a profile may choose; the first is
	// the default. DefaultNetworks if empty.
	Networks []string
	// AllowWritableRootfs lets a profile opt out of the read-only root
	// filesystem.
	AllowWritableRootfs bool
	// EnvDeliveries are the env deliveries a profile may choose; the
	// first is the default. DefaultEnvDeliveries if empty.
	EnvDeliveries []string
	// ForbidRoot refuses profiles that run as root (uid 0 or gid 0) or as
	// a user name (its uid is the image's to say), and runs profiles that
	// name no user as NonRootUser.
	ForbidRoot bool
}

// withDefaults fills the zero fields of p.
func (p SandboxPolicy) withDefaults() SandboxPolicy {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.DefaultMemoryMB, DefaultMemoryMB)
	def(&p.MaxMemoryMB, max(DefaultMaxMemoryMB, p.DefaultMemoryMB))
	def(&p.DefaultCPUMillis, DefaultCPUMillis)
	def(&p.MaxCPUMillis, max(int64(runtime.NumCPU())*1000, p.DefaultCPUMillis))
	def(&p.DefaultPids, DefaultPidsLimit)
	def(&p.MaxPids, max(DefaultMaxPids, p.DefaultPids))
	if len(p.Networks) == 0 {
		p.Networks = DefaultNetworks
	}
	if len(p.EnvDeliveries) == 0 {
		p.EnvDeliveries = DefaultEnvDeliveries
	}
	return p
}

// Check reports what is wrong with an operator's policy (zero fields take
// their defaults): a default above its maximum, an unknown capability, or
// a network mode that would widen what a task reaches (host, another
// container's). Its errors name the setting.
func (p SandboxPolicy) Check() error {
	p = p.withDefaults()
	for _, l := range []struct {
		name     string
		def, max int64
	}{{"memory", p.DefaultMemoryMB, p.MaxMemoryMB}, {"cpu", p.DefaultCPUMillis, p.MaxCPUMillis}, {"pids", p.DefaultPids, p.MaxPids}} {
		if l.def > l.max {
			return fmt.Errorf("sandbox policy: the default %s limit %d is above its maximum %d", l.name, l.def, l.max)
		}
	}
	for _, c := range p.AllowedCaps {
		if !slices.Contains(Capabilities, c) {
			return fmt.Errorf("sandbox policy: allowed capability %q is not a Linux capability name (without CAP_; ALL is not allowed)", c)
		}
	}
	for _, n := range p.Networks {
		if n == "host" || strings.HasPrefix(n, "container:") || !networkName.MatchString(n) {
			return fmt.Errorf("sandbox policy: network %q is not allowed: a task gets bridge, none or a named network, never the host's or another container's", n)
		}
	}
	for _, d := range p.EnvDeliveries {
		if !slices.Contains(DefaultEnvDeliveries, d) {
			return fmt.Errorf("sandbox policy: env delivery %q is neither %s nor %s", d, EnvDeliveryStdin, EnvDeliveryEnv)
		}
	}
	return nil
}

var (
	networkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	userPart    = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$`)
)

// Settings returns the container settings of a profile's request under
// the policy. Returns EINVALID naming the field (sandbox.memory_mb, …) if
// the request asks for more than the policy allows.
func (p SandboxPolicy) Settings(req Sandbox) (*SandboxSettings, error) {
	p = p.withDefaults()
	out := &SandboxSettings{Network: p.Networks[0], ReadOnlyRootfs: !req.WritableRootfs, CapAdd: []string{}, EnvDelivery: p.EnvDeliveries[0]}
	var err error
	if out.MemoryMB, err = limit("sandbox.memory_mb", req.MemoryMB, p.DefaultMemoryMB, p.MaxMemoryMB); err != nil {
		return nil, err
	}
	if out.CPUMillis, err = limit("sandbox.cpu_millis", req.CPUMillis, p.DefaultCPUMillis, p.MaxCPUMillis); err != nil {
		return nil, err
	}
	if out.PidsLimit, err = limit("sandbox.pids_limit", req.PidsLimit, p.DefaultPids, p.MaxPids); err != nil {
		return nil, err
	}
	if req.WritableRootfs && !p.AllowWritableRootfs {
		return nil, Invalid("sandbox.writable_rootfs", "is not allowed by the operator: task containers have a read-only root filesystem and a writable /tmp")
	}
	if req.Network != "" {
		if !slices.Contains(p.Networks, req.Network) {
			return nil, Invalid("sandbox.network", "%q is not allowed by the operator (allowed: %s)", truncate(req.Network, 64), strings.Join(p.Networks, ", "))
		}
		out.Network = req.Network
	}
	if req.EnvDelivery != "" {
		switch {
		case !slices.Contains(DefaultEnvDeliveries, req.EnvDelivery):
			return nil, Invalid("sandbox.env_delivery", "must be %s or %s", EnvDeliveryStdin, EnvDeliveryEnv)
		case !slices.Contains(p.EnvDeliveries, req.EnvDelivery):
			return nil, Invalid("sandbox.env_delivery", "%s is not allowed by the operator (allowed: %s)", req.EnvDelivery, strings.Join(p.EnvDeliveries, ", "))
		}
		out.EnvDelivery = req.EnvDelivery
	}
	for _, c := range req.CapAdd {
		switch {
		case !slices.Contains(Capabilities, c):
			return nil, Invalid("sandbox.cap_add", "%q is not a Linux capability name (upper case, without CAP_)", truncate(c, 64))
		case !slices.Contains(p.AllowedCaps, c):
			return nil, Invalid("sandbox.cap_add", "%s is not allowed by the operator (allowed: %s)", c, listOrNone(p.AllowedCaps))
		}
		out.CapAdd = append(out.CapAdd, c)
	}
	if out.User, err = p.user(req.User); err != nil {
		return nil, err
	}
	return out, nil
}

// limit returns v, or def if v is 0; v must be in 1..maxV.
func limit(field string, v, def, maxV int64) (int64, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0 || v > maxV:
		return 0, Invalid(field, "must be between 1 and %d, the operator's maximum (0 or absent: the default %d)", maxV, def)
	}
	return v, nil
}

// user checks a profile's user under the policy and returns the user its
// containers run as.
func (p SandboxPolicy) user(u string) (string, error) {
	if u == "" {
		if p.ForbidRoot {
			return NonRootUser, nil
		}
		return "", nil
	}
	name, group, hasGroup := strings.Cut(u, ":")
	if !userPart.MatchString(name) || (hasGroup && !userPart.MatchString(group)) {
		return "", Invalid("sandbox.user", "must be uid[:gid] or name[:group] (names: lower case, at most 32 characters)")
	}
	for _, part := range []string{name, group} {
		if n, err := strconv.ParseUint(part, 10, 64); err == nil && n > 1<<31-1 {
			return "", Invalid("sandbox.user", "ids must be at most %d", 1<<31-1)
		}
	}
	if !p.ForbidRoot {
		return u, nil
	}
	if !numericNonZero(name) || (hasGroup && !numericNonZero(group)) {
		return "", Invalid("sandbox.user", "root is forbidden by the operator: give a numeric uid[:gid] other than 0 (a name's uid is the image's to say)")
	}
	return u, nil
}

func numericNonZero(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// normalize makes a request's capability names canonical (upper case,
// without CAP_, sorted, once each), so that a stored profile compares and
// prints alike however it was typed.
func (s *Sandbox) normalize() {
	s.User, s.Network, s.EnvDelivery = strings.TrimSpace(s.User), strings.TrimSpace(s.Network), strings.TrimSpace(s.EnvDelivery)
	if len(s.CapAdd) == 0 {
		s.CapAdd = nil
		return
	}
	caps := make([]string, 0, len(s.CapAdd))
	for _, c := range s.CapAdd {
		caps = append(caps, strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_"))
	}
	slices.Sort(caps)
	s.CapAdd = slices.Compact(caps)
}

// SandboxSettings returns the settings a container of the profile gets
// under this service's policy. Returns EINVALID naming the field if the
// profile asks for more than the policy allows (the policy may have
// changed since the profile was saved).
func (s *Service) SandboxSettings(p *Profile) (*SandboxSettings, error) {
	return s.sandbox.Settings(p.Sandbox)
}

// SandboxPolicy returns the service's policy with its defaults filled in.
func (s *Service) SandboxPolicy() SandboxPolicy { return s.sandbox }

// sandboxChange adds "sandbox" to an update's changed fields if its
// request changed.
func sandboxChange(cur, next *Profile, changed []string) []string {
	if !cur.Sandbox.equal(next.Sandbox) {
		changed = append(changed, "sandbox")
	}
	return changed
}
