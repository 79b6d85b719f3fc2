package main

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

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
		DefaultPids: 512, MaxPids: 4096, Networks: []string{"bridge", "none"}, EnvDeliveries: []string{"stdin", "env"}}
	if got := m.Config.Tasks.Sandbox; !reflect.DeepEqual(got, want) {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	if c := m.Config.Tasks; c.MaxRunning != 2*runtime.NumCPU() || c.UserShare != 50 || c.MaxQueuedPerUser != 100 || c.SecretRequestTTL != 24*time.Hour || c.MaxLogMiB != 64 {
		t.Errorf("slot defaults %+v", c)
	}
	if m, err := parseOnly(t, "dev", "--max-running", "3", "--user-share", "34", "--max-queued-per-user", "7", "--max-task-log-mib", "5"); err != nil ||
		m.Config.Tasks.MaxRunning != 3 || m.Config.Tasks.UserShare != 34 || m.Config.Tasks.MaxQueuedPerUser != 7 || m.Config.Tasks.MaxLogMiB != 5 {
		t.Errorf("slot flags: %+v, %v", m.Config.Tasks, err)
	}
	m, err = parseOnly(t, "serve", "--networks", "none", "--networks", "agents", "--allowed-caps", "NET_BIND_SERVICE,CHOWN",
		"--forbid-root", "--allow-writable-rootfs", "--max-memory-mb", "512", "--default-memory-mb", "256", "--max-pids", "64", "--default-pids", "64", "--env-deliveries", "env")
	if err != nil {
		t.Fatal(err)
	}
	want.Networks, want.AllowedCaps, want.ForbidRoot, want.AllowWritableRootfs = []string{"none", "agents"}, []string{"NET_BIND_SERVICE", "CHOWN"}, true, true
	want.MaxMemoryMB, want.DefaultMemoryMB, want.MaxPids, want.DefaultPids = 512, 256, 64, 64
	want.EnvDeliveries = []string{"env"}
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
		{[]string{"serve", "--env-deliveries", "stdin,file"}, `env delivery "file" is neither stdin nor env`},
		{[]string{"serve", "--max-running", "0"}, "--max-running (MAX_RUNNING) is 0"},
		{[]string{"serve", "--user-share", "101"}, "percent from 1 to 100"},
		{[]string{"runner", "--worker-id", "w", "--max-queued-per-user", "0"}, "--max-queued-per-user"},
		{[]string{"serve", "--secret-request-ttl", "500ms"}, "--secret-request-ttl (SECRET_REQUEST_TTL) is 500ms: it must be from 1s to 720h"},
		{[]string{"dev", "--secret-request-ttl", "721h"}, "--secret-request-ttl"},
		{[]string{"serve", "--max-task-log-mib", "0"}, "--max-task-log-mib (MAX_TASK_LOG_MIB) is 0: it must be from 1 to 65536"},
		{[]string{"runner", "--worker-id", "w", "--max-task-log-mib", "65537"}, "--max-task-log-mib"},
	} {
		if _, err := parseOnly(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
