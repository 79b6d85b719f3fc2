package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// cmdBench is `envvault bench`: a load generator for envvault servers and
// a Vault-compatible KV v2 peer on this machine (bench_target.go speaks to
// them, bench_report.go prints what it measured).
const cmdBench = "bench"

// The limits of envvault bench: each flag's default and the range it
// accepts; anything outside is refused before a request is sent.
const (
	benchDefaultRounds     = 4
	benchMaxRounds         = 20
	benchDefaultDuration   = 2 * time.Second
	benchMinDuration       = 10 * time.Millisecond
	benchMaxDuration       = time.Minute
	benchDefaultRequests   = 20000
	benchMaxRequests       = 1000000
	benchMaxClients        = 64
	benchMaxClientCounts   = 4
	benchDefaultEnvSecrets = 20
	benchMaxEnvSecrets     = 200
	benchMaxTargets        = 4 // envvault servers; the KV peer is one more
	// benchMaxTotal bounds rounds × targets × measurements × --duration.
	benchMaxTotal = 30 * time.Minute
	// benchRequestTimeout bounds one request; a measurement stops sending
	// after --duration, so it ends at most this much later.
	benchRequestTimeout = 10 * time.Second
	// benchValueLen is the length of every value written.
	benchValueLen = 64
)

var benchDefaultClients = []int{4, 16}

// benchConfig is what envvault bench is told. The tokens are not here:
// they are read from the environment only (ENVVAULT_TOKEN, KV_TOKEN).
type benchConfig struct {
	Targets    []benchServer // --envvault NAME=URL, in order
	KV         benchServer   // --kv-addr and --kv-name; URL "" without a peer
	KVMount    string        // --kv-mount
	Rounds     int           // --rounds
	Duration   time.Duration // --duration, per measurement
	Requests   int           // --requests, per measurement
	Clients    []int         // --clients
	EnvSecrets int           // --env-secrets
	Ops        []string      // --ops, a subset of benchKinds in their order
}

// benchServer is a server to measure: its label in the output and its
// base URL (loopback only).
type benchServer struct {
	Name string
	URL  string
}

// benchKinds are the operations measured, in the order of each round.
var benchKinds = []string{"write", "read", "task-env"}

const benchHelp = `Sends the same mix of requests to one or more envvault servers and, with
--kv-addr, to a Vault-compatible KV v2 server (OpenBao, Vault) in the same
run, interleaved: each round runs every measurement on every target in
turn (the first target rotating from round to round), so that the machine's
changing load falls on all of them alike. A measurement is one operation
at one client count; its clients send requests back to back, each waiting
for its answer, for --duration or until --requests answers, whichever
comes first. It prints every measurement, then per target the median
req/s (min-max over rounds), p50 and p99 latency, and each envvault
target's ratios to the peer (req/s envvault/peer, p99 envvault/peer and,
on Linux, CPU per request envvault/peer).

On Linux each measurement also shows what the whole machine spent on it,
from /proc/stat: "cpu ms/req", the CPU time all its processes used (the
target, its database, these clients, anything else) over the requests
answered, and "busy", the share of the machine's CPU time in use. The
targets run on this machine one at a time, so where busy is near 100%
the rate is bounded by the CPU: cpus x 1000 / cpu ms/req requests a
second at most. Measurements of under 100 ticks (about 1 s of CPU time)
show "-".

Operations (values are 64 random characters, never printed):
  write     envvault: PATCH /v1/secrets/:id {"value"}: a new version of
            the client's own secret (sealed, audited)
            peer:     POST /v1/<mount>/data/<path> {"data":{"value"}}
  read      envvault: GET /v1/secrets/:id (metadata; decrypts nothing)
            peer:     GET /v1/<mount>/data/<path> (returns the value)
  task-env  envvault: GET /v1/profiles/:id/env, the query a task start
            runs to resolve its profile's secrets (--env-secrets of them),
            without decrypting them and without the task.release audit
            event a real start appends (a write, as measured by write)
            peer:     GET of one path holding the same number of values

Before measuring it creates, on each envvault target, the profiles
"bench-<run>" and "bench-<run>-w", secrets BENCH_<RUN>_W.. (one per client,
scope agents, granted to bench-<run>-w) and BENCH_<RUN>_E.. (granted to
bench-<run>, whose env task-env reads); on the
peer, paths bench-<run>/w.. and bench-<run>/env. <run> is random, so runs
never collide. It deletes them all afterwards, also after a failure or an
interrupt (the audit events of the writes stay: the trail is append-only).

Limits (refused beyond): --rounds 1-20, --duration 10ms-1m, --requests
1-1000000, --clients up to 4 counts of 1-64, --env-secrets 1-200, up to 4
envvault targets, and rounds x targets x measurements x duration at most
30m. A request times out after 10s.

Loopback only: every URL must name 127.0.0.0/8, ::1 or localhost, and the
connection is refused unless it reaches a loopback address: this command
generates load, and is not for measuring (or loading) other machines.

Tokens come only from the environment, never from flags (they would show
in ps): ENVVAULT_TOKEN, an API token per --envvault target, comma-separated
in the same order (e.g. from envvault user create), and KV_TOKEN for the
peer (X-Vault-Token); or ENVVAULT_TOKEN_FILE / KV_TOKEN_FILE.
Flags may also be set as BENCH_<FLAG> (BENCH_ROUNDS, BENCH_KV_ADDR).`

// benchCommand is `envvault bench`.
func (m *Main) benchCommand() *ffcli.Command {
	c := &Config{Command: cmdBench}
	fs := m.flagSet("envvault " + cmdBench)
	b := &c.Bench
	b.Rounds, b.Duration, b.Requests, b.EnvSecrets = benchDefaultRounds, benchDefaultDuration, benchDefaultRequests, benchDefaultEnvSecrets
	b.Clients = benchDefaultClients
	b.KV.Name = "kv"
	fs.Func("envvault", "`[NAME=]URL` of an envvault server on this machine (repeatable, up to 4; NAME labels it, default envvault, envvault-2, ...)", func(s string) error {
		for _, one := range splitNames(s) {
			name, u, found := strings.Cut(one, "=")
			if !found {
				name, u = "", one
			}
			b.Targets = append(b.Targets, benchServer{Name: name, URL: u})
		}
		return nil
	})
	fs.StringVar(&b.KV.URL, "kv-addr", "", "base `URL` of a Vault-compatible KV v2 server on this machine, the peer (e.g. http://127.0.0.1:8200); token in KV_TOKEN")
	fs.StringVar(&b.KV.Name, "kv-name", b.KV.Name, "the peer's label in the output")
	fs.StringVar(&b.KVMount, "kv-mount", "secret", "the peer's KV v2 mount path")
	fs.IntVar(&b.Rounds, "rounds", b.Rounds, "rounds, 1-20")
	fs.DurationVar(&b.Duration, "duration", b.Duration, "how long each measurement sends requests, 10ms-1m")
	fs.IntVar(&b.Requests, "requests", b.Requests, "most requests per measurement, 1-1000000")
	fs.Func("clients", "comma-separated client counts, up to 4 of 1-64 (default 4,16)", func(s string) error {
		b.Clients = nil
		for _, f := range splitNames(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("%q is not a number", f)
			}
			b.Clients = append(b.Clients, n)
		}
		return nil
	})
	fs.IntVar(&b.EnvSecrets, "env-secrets", b.EnvSecrets, "secrets granted to the task-env profile, 1-200")
	fs.Func("ops", "comma-separated operations to measure, of write, read, task-env (default all three)", func(s string) error {
		b.Ops = splitNames(s)
		return nil
	})
	cmd := m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault bench --envvault [NAME=]URL [--kv-addr URL] [flags]",
		ShortHelp:  "measure envvault servers beside a Vault-compatible KV v2 server on this machine",
		LongHelp:   benchHelp,
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("envvault bench takes no arguments, got %q", args)
			}
			if err := b.check(); err != nil {
				return err
			}
			m.Config = *c
			return nil
		},
	})
	// BENCH_ROUNDS, not ROUNDS: generic names are too easily set for
	// something else.
	cmd.Options = []ff.Option{ff.WithEnvVarPrefix("BENCH")}
	return cmd
}

// benchName is a target's label; benchMount the peer's mount path.
var (
	benchName  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	benchMount = regexp.MustCompile(`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`)
)

// check refuses a configuration beyond the limits, a URL that is not on
// loopback and labels that are not unique.
func (b *benchConfig) check() error {
	if len(b.Targets) == 0 {
		return errors.New("envvault bench needs --envvault URL (an envvault server on this machine)")
	}
	if len(b.Targets) > benchMaxTargets {
		return fmt.Errorf("--envvault: %d targets, at most %d", len(b.Targets), benchMaxTargets)
	}
	seen := map[string]bool{}
	var servers []*benchServer
	for i := range b.Targets {
		servers = append(servers, &b.Targets[i])
	}
	if b.KV.URL != "" {
		servers = append(servers, &b.KV)
	}
	for i, s := range servers {
		if s.Name == "" {
			s.Name = "envvault"
			if i > 0 {
				s.Name = fmt.Sprintf("envvault-%d", i+1)
			}
		}
		if !benchName.MatchString(s.Name) || seen[s.Name] {
			return fmt.Errorf("target name %q: must be unique, lower-case letters, digits and dashes, starting with a letter", s.Name)
		}
		seen[s.Name] = true
		if _, err := loopbackURL(s.URL); err != nil {
			return fmt.Errorf("target %s: %w", s.Name, err)
		}
	}
	if b.KV.URL != "" && !benchMount.MatchString(b.KVMount) {
		return fmt.Errorf("--kv-mount %q: must be a mount path such as secret", b.KVMount)
	}
	return b.checkLimits()
}

// checkOps refuses an operation not in benchKinds or named twice, and puts
// the rest in benchKinds' order; none named means all.
func (b *benchConfig) checkOps() error {
	if len(b.Ops) == 0 {
		b.Ops = benchKinds
		return nil
	}
	named := map[string]bool{}
	for _, op := range b.Ops {
		if !slices.Contains(benchKinds, op) || named[op] {
			return fmt.Errorf("--ops %q: each must be one of %s, named once", op, strings.Join(benchKinds, ", "))
		}
		named[op] = true
	}
	b.Ops = slices.DeleteFunc(slices.Clone(benchKinds), func(op string) bool { return !named[op] })
	return nil
}

// checkLimits refuses counts and times outside the documented limits.
func (b *benchConfig) checkLimits() error {
	switch {
	case b.Rounds < 1 || b.Rounds > benchMaxRounds:
		return fmt.Errorf("--rounds %d: must be 1-%d", b.Rounds, benchMaxRounds)
	case b.Duration < benchMinDuration || b.Duration > benchMaxDuration:
		return fmt.Errorf("--duration %s: must be %s-%s", b.Duration, benchMinDuration, benchMaxDuration)
	case b.Requests < 1 || b.Requests > benchMaxRequests:
		return fmt.Errorf("--requests %d: must be 1-%d", b.Requests, benchMaxRequests)
	case len(b.Clients) == 0 || len(b.Clients) > benchMaxClientCounts:
		return fmt.Errorf("--clients: %d counts, must be 1-%d", len(b.Clients), benchMaxClientCounts)
	case b.EnvSecrets < 1 || b.EnvSecrets > benchMaxEnvSecrets:
		return fmt.Errorf("--env-secrets %d: must be 1-%d", b.EnvSecrets, benchMaxEnvSecrets)
	}
	if err := b.checkOps(); err != nil {
		return err
	}
	for _, n := range b.Clients {
		if n < 1 || n > benchMaxClients {
			return fmt.Errorf("--clients %d: must be 1-%d", n, benchMaxClients)
		}
	}
	if total := b.worstCase(); total > benchMaxTotal {
		return fmt.Errorf("rounds x targets x measurements x duration is %s, at most %s: lower --rounds, --duration or --clients", total, benchMaxTotal)
	}
	return nil
}

// measurements is how many measurements each round makes on each target.
func (b *benchConfig) measurements() int { return len(b.Ops) * len(b.Clients) }

// targets is how many servers are measured, the peer included.
func (b *benchConfig) targets() int {
	if b.KV.URL != "" {
		return len(b.Targets) + 1
	}
	return len(b.Targets)
}

// worstCase is how long the run sends requests at most.
func (b *benchConfig) worstCase() time.Duration {
	return time.Duration(b.Rounds*b.targets()*b.measurements()) * b.Duration
}

// maxClients is the largest client count: one write secret per client.
func (b *benchConfig) maxClients() int {
	n := 0
	for _, c := range b.Clients {
		n = max(n, c)
	}
	return n
}

// runBench sets up every target, runs the rounds, prints the report and
// removes what it created, whatever happened.
func (m *Main) runBench(ctx context.Context) error {
	b := &m.Config.Bench
	if err := b.check(); err != nil { // fills in default names
		return err
	}
	targets, err := m.benchTargets(b)
	if err != nil {
		return err
	}
	run, err := newRunID()
	if err != nil {
		return err
	}
	var set []*benchTarget
	defer func() {
		// Clean up even when ctx is done (an interrupt): on a context of
		// its own, bounded.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, t := range set {
			if cerr := t.cleanup(cctx); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	for _, t := range targets {
		set = append(set, t)
		if err := t.setup(ctx, run, b); err != nil {
			return err
		}
	}
	rep := newBenchReport(m.Stdout, b, run)
	for round := range b.Rounds {
		for _, kind := range b.Ops {
			for _, clients := range b.Clients {
				for i := range targets {
					t := targets[(i+round)%len(targets)]
					r, err := t.measure(ctx, kind, clients, b)
					if err != nil {
						return err
					}
					r.round = round + 1
					rep.add(r)
				}
			}
		}
	}
	rep.summary()
	return nil
}

// benchTargets returns the targets of b, each with its token from the
// environment.
func (m *Main) benchTargets(b *benchConfig) ([]*benchTarget, error) {
	raw, err := m.envOrFile("ENVVAULT_TOKEN")
	if err != nil {
		return nil, err
	}
	tokens := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' })
	if len(tokens) != len(b.Targets) {
		return nil, fmt.Errorf("ENVVAULT_TOKEN holds %d tokens for %d --envvault targets: give one per target, comma-separated, in the same order", len(tokens), len(b.Targets))
	}
	var out []*benchTarget
	for i, s := range b.Targets {
		out = append(out, newEnvvaultTarget(s, tokens[i]))
	}
	if b.KV.URL != "" {
		token, err := m.envOrFile("KV_TOKEN")
		if err != nil {
			return nil, err
		}
		if token == "" {
			return nil, errors.New("--kv-addr is set but KV_TOKEN is not: set it to a token of the peer that may write the mount")
		}
		out = append(out, newKVTarget(b.KV, token, b.KVMount))
	}
	return out, nil
}
