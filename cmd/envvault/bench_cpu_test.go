package main

import (
	"math"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	const stat = `cpu  100 5 50 800 20 3 2 10 7 0
cpu0 50 2 25 400 10 2 1 5 7 0
cpu1 50 3 25 400 10 1 1 5 0 0
intr 12345 0 0
ctxt 999
`
	c, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq+steal; guest is inside user.
	if want := (machineCPU{busy: 170, total: 990, cpus: 2}); c != want {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
	later := machineCPU{busy: 170 + 150, total: 990 + 200, cpus: 2}
	use, ok := later.since(c, time.Second)
	if !ok {
		t.Fatal("since: not ok")
	}
	// 150 of 200 ticks busy over 1 s on 2 CPUs: 1.5 CPU-seconds, 75%.
	if math.Abs(use.seconds-1.5) > 1e-9 || math.Abs(use.share-0.75) > 1e-9 {
		t.Errorf("use %+v, want 1.5 s and 0.75", use)
	}
	if _, ok := c.since(later, time.Second); ok {
		t.Error("a counter that went back was taken")
	}
	if _, ok := (machineCPU{busy: 170 + 50, total: 990 + minCPUTicks - 1, cpus: 2}).since(c, time.Second); ok {
		t.Errorf("a span of %d ticks was taken, want at least %d", minCPUTicks-1, minCPUTicks)
	}
	for _, bad := range []string{"", "cpu 1 2 3\ncpu0 1 2 3\n", "cpu a b c d e f g h\ncpu0 1\n", "cpu 1 2 3 4 5 6 7 8\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parsed %q without an error", bad)
		}
	}
}

func TestBenchCPUPerRequest(t *testing.T) {
	res := &benchResult{lat: make([]time.Duration, 500), cpu: cpuUse{seconds: 1.5, share: 0.75}, cpuOK: true}
	if got := res.cpuPerRequest(); math.Abs(got-3) > 1e-9 {
		t.Errorf("1.5 CPU-seconds over 500 requests: %v ms each, want 3", got)
	}
	if got := fmtPercent(res.busy()); got != "75%" {
		t.Errorf("busy %s, want 75%%", got)
	}
	res.cpuOK = false
	if got := fmtMillis(res.cpuPerRequest()); got != "-" {
		t.Errorf("not measured: %s, want -", got)
	}
}

// Measured for long enough, every row of a real run carries the machine's
// CPU per request and busy share (Linux).
func TestBenchMeasuresCPU(t *testing.T) {
	ms := migratedSQLite(t)
	token := createUser(t, ms.env, "bench", ms.args...)
	srv := mustStart(t, ms.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker"}, ms.args...)...)
	in := mustStart(t, map[string]string{"ENVVAULT_TOKEN": token},
		"bench", "--envvault", "ev="+srv.url(), "--ops", "read", "--rounds", "1", "--duration", "1500ms",
		"--requests", "1000000", "--clients", "2", "--env-secrets", "1")
	out := in.stdout.String()
	// round target op clients requests req/s p50 p99 cpu-ms/req busy
	wantLines(t, out, `(?m)^1\s+ev\s+read\s+2\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\.\d\d\s+\d+%$`, 1)
	wantLines(t, out, `(?m)^ev\s+read\s+2\s+[\d.]+\s+\([\d.]+-[\d.]+\)\s+[\d.]+\s+[\d.]+\s+\d+\.\d\d\s+\d+%$`, 1)
}
