package main

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/vault"
)

// parseOnly parses args as the binary would, with no environment.
func parseOnly(t *testing.T, args ...string) (*Main, error) {
	t.Helper()
	m := &Main{Stdout: &testenv.SyncBuffer{}, Stderr: &testenv.SyncBuffer{}, Getenv: func(string) string { return "" }}
	return m, m.ParseFlags(t.Context(), args)
}

func TestSandboxFlags(t *testing.T) {
	t.Parallel()
	m, err := parseOnly(t, "runner", "--worker-id", "w")
	if err != nil {
		t.Fatal(err)
	}
	want := vault.SandboxPolicy{DefaultMemoryMB: 1024, MaxMemoryMB: 4096, DefaultCPUMillis: 1000, MaxCPUMillis: int64(runtime.NumCPU()) * 1000,
		DefaultPids: 512, MaxPids: 4096, Networks: []string{"bridge", "none"}}
	if got := m.Config.Tasks.Sandbox; !reflect.DeepEqual(got, want) {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	m, err = parseOnly(t, "serve", "--networks", "none", "--networks", "agents", "--allowed-caps", "NET_BIND_SERVICE,CHOWN",
		"--forbid-root", "--allow-writable-rootfs", "--max-memory-mb", "512", "--default-memory-mb", "256", "--max-pids", "64", "--default-pids", "64")
	if err != nil {
		t.Fatal(err)
	}
	want.Networks, want.AllowedCaps, want.ForbidRoot, want.AllowWritableRootfs = []string{"none", "agents"}, []string{"NET_BIND_SERVICE", "CHOWN"}, true, true
	want.MaxMemoryMB, want.DefaultMemoryMB, want.MaxPids, want.DefaultPids = 512, 256, 64, 64
	if got := m.Config.Tasks.Sandbox; !reflect.DeepEqual(got, want) {
		t.Errorf("flags gave %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "--networks", "host"}, `network "host" is not allowed`},
		{[]string{"runner", "--worker-id", "w", "--networks", "container:db"}, "container:db"},
		{[]string{"serve", "--allowed-caps", "ALL"}, `"ALL" is not a Linux capability`},
		{[]string{"serve", "--max-memory-mb", "512"}, "default memory limit 1024 is above its maximum 512"},
		{[]string{"serve", "--max-pids", "10"}, "pids"},
	} {
		if _, err := parseOnly(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
