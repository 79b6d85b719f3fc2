package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// benchReport prints envvault bench's measurements as they come, then a
// summary per target and the ratios of each envvault target to the peer.
type benchReport struct {
	w       io.Writer
	b       *benchConfig
	order   []string // target names, envvault first, the peer last
	peer    string   // "" without one
	results map[benchKey][]*benchResult
}

// benchKey names one measurement repeated in every round.
type benchKey struct {
	target  string
	kind    string
	clients int
}

const benchRowFormat = "%-5s  %-16s  %-8s  %7s  %8s  %9s  %8s  %8s  %10s  %6s\n"

// newBenchReport prints the run's header.
func newBenchReport(w io.Writer, b *benchConfig, run string) *benchReport {
	r := &benchReport{w: w, b: b, results: map[benchKey][]*benchResult{}}
	var names []string
	for _, t := range b.Targets {
		r.order = append(r.order, t.Name)
		names = append(names, t.Name)
	}
	if b.KV.URL != "" {
		r.peer = b.KV.Name
		r.order = append(r.order, r.peer)
		names = append(names, r.peer+" (peer)")
	}
	fmt.Fprintf(w, "envvault bench run %s: %d rounds, interleaved; targets %s\n", run, b.Rounds, strings.Join(names, ", "))
	fmt.Fprintf(w, "each measurement: %s at %s clients, for %s or %d requests; %d-byte values; task-env of %d secrets\n",
		strings.Join(b.Ops, ", "), joinInts(b.Clients), b.Duration, b.Requests, benchValueLen, b.EnvSecrets)
	fmt.Fprintf(w, "cpu ms/req: the CPU time the whole machine spent per answered request while the measurement ran (all processes: the target, its database, these clients); busy: the share of the machine's CPU time in use\n")
	fmt.Fprintf(w, benchRowFormat, "round", "target", "op", "clients", "requests", "req/s", "p50 ms", "p99 ms", "cpu ms/req", "busy")
	return r
}

// add prints one measurement and keeps it for the summary.
func (r *benchReport) add(res *benchResult) {
	k := benchKey{res.target, res.kind, res.clients}
	r.results[k] = append(r.results[k], res)
	p50, p99 := res.percentile(0.50), res.percentile(0.99)
	fmt.Fprintf(r.w, benchRowFormat, fmt.Sprint(res.round), res.target, res.kind, fmt.Sprint(res.clients),
		fmt.Sprint(len(res.lat)), fmtRate(res.rate()), fmtMillis(p50), fmtMillis(p99), fmtMillis(res.cpuPerRequest()), fmtPercent(res.busy()))
}

// summary prints, per target and measurement, the median over rounds of
// req/s (with min-max), p50 and p99; then each envvault target's ratios
// to the peer.
func (r *benchReport) summary() {
	fmt.Fprintf(r.w, "\nsummary: median of %d rounds (req/s min-max)\n", r.b.Rounds)
	fmt.Fprintf(r.w, "%-16s  %-8s  %7s  %9s  %-19s  %8s  %8s  %10s  %6s\n", "target", "op", "clients", "req/s", "(min-max)", "p50 ms", "p99 ms", "cpu ms/req", "busy")
	for _, k := range r.keys() {
		rates, p50s, p99s := r.series(k)
		cpus, busy := r.cpuSeries(k)
		fmt.Fprintf(r.w, "%-16s  %-8s  %7d  %9s  %-19s  %8s  %8s  %10s  %6s\n", k.target, k.kind, k.clients,
			fmtRate(median(rates)), "("+fmtRate(slices.Min(rates))+"-"+strings.TrimSpace(fmtRate(slices.Max(rates)))+")",
			fmtMillis(median(p50s)), fmtMillis(median(p99s)), fmtMillis(median(cpus)), fmtPercent(median(busy)))
	}
	if r.peer == "" {
		return
	}
	fmt.Fprintf(r.w, "\nratios to %s (medians): req/s target/%s (above 1: more requests served), p99 and cpu ms/req target/%s (below 1: lower tail latency, less CPU per request)\n", r.peer, r.peer, r.peer)
	fmt.Fprintf(r.w, "%-16s  %-8s  %7s  %11s  %11s  %11s\n", "target", "op", "clients", "req/s ratio", "p99 ratio", "cpu ratio")
	for _, k := range r.keys() {
		if k.target == r.peer {
			continue
		}
		pk := benchKey{r.peer, k.kind, k.clients}
		rates, _, p99s := r.series(k)
		prates, _, pp99s := r.series(pk)
		cpus, _ := r.cpuSeries(k)
		pcpus, _ := r.cpuSeries(pk)
		fmt.Fprintf(r.w, "%-16s  %-8s  %7d  %11s  %11s  %11s\n", k.target, k.kind, k.clients,
			fmtRatio(median(rates), median(prates)), fmtRatio(median(p99s), median(pp99s)), fmtRatio(median(cpus), median(pcpus)))
	}
}

// keys lists the measurements in the order of the targets, operations
// and client counts.
func (r *benchReport) keys() []benchKey {
	var out []benchKey
	for _, t := range r.order {
		for _, kind := range r.b.Ops {
			for _, c := range r.b.Clients {
				if k := (benchKey{t, kind, c}); len(r.results[k]) > 0 {
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// series is one measurement's req/s, p50 and p99 (in ms) over rounds.
func (r *benchReport) series(k benchKey) (rates, p50s, p99s []float64) {
	for _, res := range r.results[k] {
		rates = append(rates, res.rate())
		p50s = append(p50s, res.percentile(0.50))
		p99s = append(p99s, res.percentile(0.99))
	}
	return rates, p50s, p99s
}

// cpuSeries is one measurement's machine CPU ms per request and busy
// share over rounds (NaN where not measured).
func (r *benchReport) cpuSeries(k benchKey) (perRequest, busy []float64) {
	for _, res := range r.results[k] {
		perRequest = append(perRequest, res.cpuPerRequest())
		busy = append(busy, res.busy())
	}
	return perRequest, busy
}

// cpuPerRequest is the machine's busy CPU time per answered request in
// milliseconds, NaN if not measured or nothing was answered.
func (res *benchResult) cpuPerRequest() float64 {
	if !res.cpuOK || len(res.lat) == 0 {
		return math.NaN()
	}
	return res.cpu.seconds * 1000 / float64(len(res.lat))
}

// busy is the share of the machine's CPU time in use during the
// measurement, NaN if not measured.
func (res *benchResult) busy() float64 {
	if !res.cpuOK {
		return math.NaN()
	}
	return res.cpu.share
}

// rate is answered requests per second.
func (res *benchResult) rate() float64 {
	if res.elapsed <= 0 {
		return 0
	}
	return float64(len(res.lat)) / res.elapsed.Seconds()
}

// percentile is the latency at quantile q in milliseconds (nearest
// rank), NaN without requests.
func (res *benchResult) percentile(q float64) float64 {
	if len(res.lat) == 0 {
		return math.NaN()
	}
	s := slices.Clone(res.lat)
	slices.Sort(s)
	i := max(0, int(math.Ceil(q*float64(len(s))))-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// median is the middle value (the mean of the two middle ones), ignoring
// NaN; NaN when nothing is left.
func median(xs []float64) float64 {
	s := slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func fmtRate(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.1f", x)
}

func fmtMillis(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func fmtPercent(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

func fmtRatio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
