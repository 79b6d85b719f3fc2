package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// machineCPU is the machine's CPU time so far, from Linux's /proc/stat: the
// ticks spent busy (anything but idle and waiting for I/O) and in all,
// over all CPUs, and how many CPUs there are. envvault bench reads it
// before and after each measurement: the targets run on this machine, one
// measurement at a time, so the CPU the machine spent meanwhile (the
// target, its database, the benchmark's own clients, and whatever else
// runs) over the requests answered is what one request cost, all parts
// counted: on a machine whose CPUs are all busy, it bounds the rate.
type machineCPU struct {
	busy, total uint64
	cpus        int
}

// procStat is where readMachineCPU reads.
const procStat = "/proc/stat"

// readMachineCPU reads the machine's CPU time; ok is false where there is
// no /proc/stat (not Linux), and the columns read "-".
func readMachineCPU() (c machineCPU, ok bool) {
	b, err := os.ReadFile(procStat)
	if err != nil {
		return c, false
	}
	c, err = parseProcStat(b)
	return c, err == nil
}

// parseProcStat reads the first line of /proc/stat ("cpu" and the ticks
// of user, nice, system, idle, iowait, irq, softirq, steal...; guest time
// is counted in user already) and counts the "cpuN" lines.
func parseProcStat(b []byte) (machineCPU, error) {
	var c machineCPU
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 0 && f[0] == "cpu":
			if len(f) < 9 {
				return c, fmt.Errorf("%s: %d fields on the cpu line, want at least 8 counters", procStat, len(f)-1)
			}
			for i, s := range f[1:9] {
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return c, fmt.Errorf("%s: cpu counter %d: %w", procStat, i+1, err)
				}
				c.total += n
				if i != 3 && i != 4 { // idle, iowait
					c.busy += n
				}
			}
		case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
			c.cpus++
		}
	}
	if c.total == 0 || c.cpus == 0 {
		return c, fmt.Errorf("%s: no cpu line", procStat)
	}
	return c, nil
}

// cpuUse is the machine's CPU use over one measurement.
type cpuUse struct {
	seconds float64 // busy CPU time, all CPUs
	share   float64 // of all the CPU time there was, 0-1
}

// minCPUTicks is the fewest ticks (all CPUs) a measurement must span for
// its CPU figures: the kernel counts in ticks of usually 10 ms, so a
// shorter one would be off by more than a few percent. Shorter
// measurements show "-".
const minCPUTicks = 100

// since is the CPU used between before and c, over elapsed; not ok if the
// counters went back or too few ticks passed (minCPUTicks).
func (c machineCPU) since(before machineCPU, elapsed time.Duration) (cpuUse, bool) {
	if c.total < before.total+minCPUTicks || c.busy < before.busy {
		return cpuUse{}, false
	}
	total := c.total - before.total
	share := float64(c.busy-before.busy) / float64(total)
	// Ticks are USER_HZ; the share of them times the CPU time there was
	// needs no tick rate.
	return cpuUse{seconds: share * elapsed.Seconds() * float64(c.cpus), share: share}, true
}
