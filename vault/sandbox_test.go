package vault

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSandboxSettings(t *testing.T) {
	strict := SandboxPolicy{MaxCPUMillis: 2000}
	open := SandboxPolicy{MaxCPUMillis: 2000, AllowedCaps: []string{"NET_BIND_SERVICE", "CHOWN"},
		Networks: []string{"none", "bridge", "agents"}, AllowWritableRootfs: true}
	noRoot := SandboxPolicy{MaxCPUMillis: 2000, ForbidRoot: true}
	defaults := SandboxSettings{MemoryMB: DefaultMemoryMB, CPUMillis: DefaultCPUMillis, PidsLimit: DefaultPidsLimit,
		CapAdd: []string{}, Network: "bridge", ReadOnlyRootfs: true, EnvDelivery: EnvDeliveryStdin}
	envOnly := SandboxPolicy{MaxCPUMillis: 2000, EnvDeliveries: []string{EnvDeliveryEnv}}
	with := func(f func(*SandboxSettings)) *SandboxSettings { s := defaults; f(&s); return &s }
	for _, tc := range []struct {
		name      string
		policy    SandboxPolicy
		req       Sandbox
		want      *SandboxSettings
		wantField string // the refused field; "" if accepted
		wantMsg   string
	}{
		{name: "defaults", policy: strict, want: &defaults},
		{name: "within the maxima", policy: strict, req: Sandbox{MemoryMB: DefaultMaxMemoryMB, CPUMillis: 2000, PidsLimit: DefaultMaxPids},
			want: with(func(s *SandboxSettings) {
				s.MemoryMB, s.CPUMillis, s.PidsLimit = DefaultMaxMemoryMB, 2000, DefaultMaxPids
			})},
		{name: "memory above the maximum", policy: strict, req: Sandbox{MemoryMB: DefaultMaxMemoryMB + 1}, wantField: "sandbox.memory_mb", wantMsg: "4096"},
		{name: "negative memory", policy: strict, req: Sandbox{MemoryMB: -1}, wantField: "sandbox.memory_mb"},
		{name: "cpu above the maximum", policy: strict, req: Sandbox{CPUMillis: 2001}, wantField: "sandbox.cpu_millis", wantMsg: "2000"},
		{name: "pids above the maximum", policy: strict, req: Sandbox{PidsLimit: DefaultMaxPids + 1}, wantField: "sandbox.pids_limit"},
		{name: "capability not allowed", policy: strict, req: Sandbox{CapAdd: []string{"NET_ADMIN"}}, wantField: "sandbox.cap_add", wantMsg: "allowed: none"},
		{name: "unknown capability", policy: open, req: Sandbox{CapAdd: []string{"ALL"}}, wantField: "sandbox.cap_add", wantMsg: "not a Linux capability"},
		{name: "allowed capabilities", policy: open, req: Sandbox{CapAdd: []string{"CHOWN", "NET_BIND_SERVICE"}},
			want: with(func(s *SandboxSettings) { s.CapAdd, s.Network = []string{"CHOWN", "NET_BIND_SERVICE"}, "none" })},
		{name: "network not allowed", policy: strict, req: Sandbox{Network: "host"}, wantField: "sandbox.network", wantMsg: "bridge, none"},
		{name: "network none", policy: strict, req: Sandbox{Network: "none"}, want: with(func(s *SandboxSettings) { s.Network = "none" })},
		{name: "first network is the default", policy: open, want: with(func(s *SandboxSettings) { s.Network = "none" })},
		{name: "writable root refused", policy: strict, req: Sandbox{WritableRootfs: true}, wantField: "sandbox.writable_rootfs"},
		{name: "writable root allowed", policy: open, req: Sandbox{WritableRootfs: true},
			want: with(func(s *SandboxSettings) { s.ReadOnlyRootfs, s.Network = false, "none" })},
		{name: "user by id", policy: strict, req: Sandbox{User: "1000:1000"}, want: with(func(s *SandboxSettings) { s.User = "1000:1000" })},
		{name: "user by name", policy: strict, req: Sandbox{User: "node"}, want: with(func(s *SandboxSettings) { s.User = "node" })},
		{name: "root allowed by default", policy: strict, req: Sandbox{User: "root"}, want: with(func(s *SandboxSettings) { s.User = "root" })},
		{name: "malformed user", policy: strict, req: Sandbox{User: "a b"}, wantField: "sandbox.user"},
		{name: "uid too large", policy: strict, req: Sandbox{User: "4294967296"}, wantField: "sandbox.user"},
		{name: "no root: default user", policy: noRoot, want: with(func(s *SandboxSettings) { s.User = NonRootUser })},
		{name: "no root: uid 0", policy: noRoot, req: Sandbox{User: "0"}, wantField: "sandbox.user", wantMsg: "root is forbidden"},
		{name: "no root: gid 0", policy: noRoot, req: Sandbox{User: "1000:0"}, wantField: "sandbox.user"},
		{name: "no root: a name", policy: noRoot, req: Sandbox{User: "root"}, wantField: "sandbox.user"},
		{name: "env delivery: stdin by default", policy: strict, want: &defaults},
		{name: "env delivery: env asked", policy: strict, req: Sandbox{EnvDelivery: EnvDeliveryEnv},
			want: with(func(s *SandboxSettings) { s.EnvDelivery = EnvDeliveryEnv })},
		{name: "env delivery: unknown", policy: strict, req: Sandbox{EnvDelivery: "file"}, wantField: "sandbox.env_delivery", wantMsg: "must be stdin or env"},
		{name: "env delivery: the operator's first is the default", policy: envOnly,
			want: with(func(s *SandboxSettings) { s.EnvDelivery = EnvDeliveryEnv })},
		{name: "env delivery: not allowed", policy: envOnly, req: Sandbox{EnvDelivery: EnvDeliveryStdin}, wantField: "sandbox.env_delivery", wantMsg: "allowed: env"},
		{name: "no root: numeric user", policy: noRoot, req: Sandbox{User: "1000:1000"}, want: with(func(s *SandboxSettings) { s.User = "1000:1000" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.policy.Settings(tc.req)
			if tc.wantField != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != EINVALID || e.Field != tc.wantField || !strings.Contains(e.Message, tc.wantMsg) {
					t.Fatalf("Settings = %+v, %v; want EINVALID on %s mentioning %q", got, err, tc.wantField, tc.wantMsg)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Settings = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSandboxPolicyCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy SandboxPolicy
		want   string // in the error; "" for none
	}{
		{"zero takes the defaults", SandboxPolicy{}, ""},
		{"default above max", SandboxPolicy{DefaultMemoryMB: 100, MaxMemoryMB: 50}, "default memory limit 100 is above its maximum 50"},
		{"default pids above max", SandboxPolicy{DefaultPids: 10, MaxPids: 5}, "pids"},
		{"unknown capability", SandboxPolicy{AllowedCaps: []string{"ALL"}}, `"ALL"`},
		{"host network", SandboxPolicy{Networks: []string{"bridge", "host"}}, `"host"`},
		{"another container's network", SandboxPolicy{Networks: []string{"container:db"}}, "container:db"},
		{"named network", SandboxPolicy{Networks: []string{"agents-net", "none"}}, ""},
		{"unknown env delivery", SandboxPolicy{EnvDeliveries: []string{"stdin", "file"}}, `env delivery "file"`},
		{"env delivery env only", SandboxPolicy{EnvDeliveries: []string{"env"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Check = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestSandboxNormalize(t *testing.T) {
	s := Sandbox{User: " 1000 ", CapAdd: []string{"cap_net_bind_service", "CHOWN", "NET_BIND_SERVICE"}, Network: " none"}
	s.normalize()
	want := Sandbox{User: "1000", CapAdd: []string{"CHOWN", "NET_BIND_SERVICE"}, Network: "none"}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("normalize = %+v, want %+v", s, want)
	}
	empty := Sandbox{CapAdd: []string{}}
	if empty.normalize(); empty.CapAdd != nil || !empty.IsZero() {
		t.Fatalf("an empty request normalizes to %+v, want the zero Sandbox", empty)
	}
}
