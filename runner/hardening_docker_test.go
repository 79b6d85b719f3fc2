package runner_test

import (
	"bufio"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/envvault/envvault/runner"
)

// capName is how the engine may report a capability: with or without the
// CAP_ prefix, depending on its version.
func capNames(caps []string) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimPrefix(c, "CAP_")
	}
	return out
}

// TestHardeningInInspect proves every hardening setting in `docker inspect`
// and from inside the container: its user, capabilities, no-new-privileges,
// a read-only root with a writable /tmp, its network and its limits.
func TestHardeningInInspect(t *testing.T) {
	e := setup(t, runner.Options{})
	spec := e.spec(t, e.shell, "/bin/sh", "-c",
		`id; touch /rootfs-write 2>/dev/null || echo rootfs-ro; touch /tmp/x && echo tmp-rw; grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status`)
	spec.Hardening = runner.Hardening{User: "1000:1000", MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 32,
		CapAdd: []string{"NET_BIND_SERVICE"}, Network: "none", ReadOnlyRootfs: true}
	id := e.start(t, spec)
	if code, err := e.r.Wait(t.Context(), id); err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v; logs:\n%s", code, err, e.logs(t, id))
	}
	out := e.logs(t, id)
	for _, want := range []string{"uid=1000 gid=1000", "rootfs-ro", "tmp-rw",
		"CapBnd:\t0000000000000400", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the container printed no %q:\n%s", want, out)
		}
	}
	c, err := e.cli.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	h := c.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"Config.User 1000:1000", c.Config.User == "1000:1000"},
		{"CapDrop [ALL]", slices.Equal(capNames(h.CapDrop), []string{"ALL"})},
		{"CapAdd [NET_BIND_SERVICE]", slices.Equal(capNames(h.CapAdd), []string{"NET_BIND_SERVICE"})},
		{"SecurityOpt no-new-privileges", slices.Contains(h.SecurityOpt, "no-new-privileges:true")},
		{"not Privileged", !h.Privileged},
		{"ReadonlyRootfs", h.ReadonlyRootfs},
		{"Tmpfs /tmp", strings.HasPrefix(h.Tmpfs["/tmp"], "rw,nosuid,nodev") && len(h.Tmpfs) == 1},
		{"NetworkMode none", h.NetworkMode == "none"},
		{"Memory 64 MiB, no swap", h.Memory == 64<<20 && h.MemorySwap == 64<<20},
		{"NanoCPUs 0.5", h.NanoCPUs == 500_000_000},
		{"PidsLimit 32", h.PidsLimit != nil && *h.PidsLimit == 32},
		{"IpcMode private", h.IpcMode == container.IPCModePrivate},
		{"no binds, mounts or devices", len(h.Binds) == 0 && len(h.Mounts) == 0 && len(h.Devices) == 0},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("docker inspect: want %s; HostConfig: %+v, User %q", ch.what, *h, c.Config.User)
		}
	}
	for _, m := range c.Mounts {
		if m.Type == "bind" || m.Type == "volume" {
			t.Errorf("a %s mount %s -> %s", m.Type, m.Source, m.Destination)
		}
	}
}

// TestForkBombContained runs a fork bomb (the classic one, whose
// processes come and go, then a loop that keeps every process it forks)
// under a PIDs limit: forks fail at the limit, the container's first
// process lives on and sees no more processes than the limit, and the
// engine keeps answering.
func TestForkBombContained(t *testing.T) {
	e := setup(t, runner.Options{StopTimeout: time.Second})
	const limit = 24
	spec := e.spec(t, e.shell, "/bin/sh", "-c", `(b(){ b | b & }; b) 2>/dev/null; (while :; do sleep 1000 & done) 2>/dev/null; `+
		`set -- /proc/[0-9]*; echo "contained procs=$#"; exec sleep 1000`)
	spec.Hardening = runner.Hardening{PidsLimit: limit, NanoCPUs: 250_000_000, MemoryBytes: 64 << 20, ReadOnlyRootfs: true}
	id := e.start(t, spec)
	rc, err := e.r.Logs(t.Context(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var procs int
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "contained procs="); ok {
			procs, _ = strconv.Atoi(n)
			break
		}
	}
	if procs == 0 {
		t.Fatalf("the container ended its logs (%v) without counting its processes", sc.Err())
	}
	// The loop ends only when a fork fails: reaching the line proves the
	// limit stopped it. The classic bomb's processes come and go, so how
	// many are left varies; never more than the limit.
	if procs > limit {
		t.Errorf("%d processes after the bomb, above the limit of %d", procs, limit)
	}
	st, err := e.cli.ContainerStatsOneShot(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(st.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.PidsStats.Current > limit || s.PidsStats.Limit != limit {
		t.Errorf("pids %d of limit %d, want at most %d", s.PidsStats.Current, s.PidsStats.Limit, limit)
	}
	start := time.Now()
	if err := e.r.Ping(t.Context()); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("the engine answered a ping in %v (%v) beside the bomb", time.Since(start), err)
	}
	if c, err := e.r.Inspect(t.Context(), id); err != nil || !c.Running {
		t.Fatalf("the bomb's container should still run, contained: %+v, %v", c, err)
	}
}

// TestMemoryHogContained runs a process that doubles a string until it
// is killed by the memory limit.
func TestMemoryHogContained(t *testing.T) {
	e := setup(t, runner.Options{})
	spec := e.spec(t, e.shell, "/bin/sh", "-c", `x=0123456789abcdef; while :; do x=$x$x; done`)
	spec.Hardening = runner.Hardening{MemoryBytes: 32 << 20, PidsLimit: 16, ReadOnlyRootfs: true}
	id := e.start(t, spec)
	code, err := e.r.Wait(t.Context(), id)
	if err != nil || code != 137 {
		t.Fatalf("Wait = %d, %v; want 137 (killed)", code, err)
	}
	c, err := e.cli.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !c.State.OOMKilled {
		t.Errorf("State.OOMKilled = false: the hog did not die of its memory limit (%+v)", *c.State)
	}
}
