package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	dockerclient "github.com/docker/docker/client"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// Worker timings.
const (
	// dockerPingTimeout bounds the start-up check of the Docker Engine.
	dockerPingTimeout = 5 * time.Second
	// recoverRetryMax caps the wait between attempts to recover tasks
	// while the Docker Engine is down.
	recoverRetryMax = 30 * time.Second
)

// loadBaseline reads --baseline-env-file and --locked-names. A malformed
// file stops start-up with its path, the line and the reason, never a
// value.
func (m *Main) loadBaseline() error {
	b, err := orchestrator.LoadBaseline(m.Config.BaselineEnvFile, m.Config.LockedNames)
	if err != nil {
		return err // "baseline env file PATH: line N: reason", or "locked names: …"
	}
	var missing []string
	for _, name := range b.Locked {
		if _, ok := b.Env[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		// Merge drops a locked name that has no baseline value, so that
		// no profile or secret sets it: legal, but likely a mistake.
		m.logger.Warn("locked names without a value in the baseline env file: no task gets them", "names", missing)
	}
	m.baseline = b
	m.logger.Info("baseline env", "file", m.Config.BaselineEnvFile, "names", len(b.Env), "locked", b.Locked)
	return nil
}

// newOrchestrator builds the orchestrator the API and the worker share.
// Unless --no-worker it gets a runner on the Docker Engine that DOCKER_HOST
// (and the other DOCKER_* variables) name, or the local socket; the engine
// need not answer yet.
func (m *Main) newOrchestrator(svc *vault.Service) (*orchestrator.Orchestrator, error) {
	var backend orchestrator.Backend // an untyped nil without a worker
	if !m.Config.NoWorker {
		cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
		if err != nil {
			// Only a malformed DOCKER_* setting gets here.
			return nil, fmt.Errorf("the Docker client cannot be made from DOCKER_HOST and the other DOCKER_* variables: %w", err)
		}
		m.docker = cli
		init := m.Config.Tasks.envInit()
		if init == "" && slices.Contains(m.Config.Tasks.Sandbox.EnvDeliveries, vault.EnvDeliveryStdin) {
			m.logger.Error("no envvault-init program found beside envvault or on PATH: tasks with env delivery stdin fail until one is installed or named by --env-init (ENV_INIT)")
		}
		if backend, err = m.newBackend(cli, init); err != nil {
			return nil, err
		}
	}
	return orchestrator.New(orchestrator.Config{
		Vault:    svc,
		Store:    m.store,
		Runner:   backend,
		Baseline: m.baseline,
		Worker:   m.Config.WorkerID,
		Logger:   m.logger.With("worker", m.Config.WorkerID),

		MaxRunning:       m.Config.Tasks.MaxRunning,
		UserSharePercent: m.Config.Tasks.UserShare,
		MaxQueuedPerUser: m.Config.Tasks.MaxQueuedPerUser,
		SecretRequestTTL: m.Config.Tasks.SecretRequestTTL,
		MaxLogBytes:      int64(m.Config.Tasks.MaxLogMiB) << 20,
		Observer:         m.metrics.m,

		TaskAPIURL:        m.Config.Tasks.TaskAPI.url(),
		TaskCredentialTTL: m.Config.Tasks.TaskAPI.TTL,
	}), nil
}

// startWorker runs the orchestrator's worker in the background until
// Close; Wait returns its error if it fails.
func (m *Main) startWorker(orch *orchestrator.Orchestrator) {
	ctx, cancel := context.WithCancel(context.Background())
	m.stopWorker = cancel
	m.workerDone = make(chan error, 1)
	go func() {
		m.workerDone <- m.work(ctx, orch)
		close(m.workerDone)
	}()
}

// work is the worker's life. A Docker Engine that does not answer stops
// neither the API nor the worker: the worker claims tasks all the same, and
// each fails with the runner's message ("Docker Engine is not reachable at
// …") until the engine is back. Only recovery needs the engine before any
// claim; while it is down, work retries recovery and claims nothing, so no
// task is failed that another worker could run. Any other failure of the
// worker is returned, and stops the process.
func (m *Main) work(ctx context.Context, orch *orchestrator.Orchestrator) error {
	log := m.logger.With("worker", m.Config.WorkerID, "docker_host", m.docker.DaemonHost())
	pctx, cancel := context.WithTimeout(ctx, dockerPingTimeout)
	err := runner.New(m.docker, runner.Options{}).Ping(pctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		log.Error("Docker Engine does not answer: the API serves on, but tasks fail until the engine answers; "+
			"check DOCKER_HOST and that this user may use the Docker socket, or start with --no-worker to leave tasks queued for other workers",
			"err", err.Error())
	default:
		log.Info("task worker started")
	}
	delay := time.Second
	for {
		err := orch.Run(ctx)
		if ctx.Err() != nil || err == nil {
			return nil
		}
		// recover lists the engine's containers before it attaches to any,
		// so a failure to reach the engine leaves nothing half done and
		// Run may be called again.
		if !errors.Is(err, runner.ErrUnavailable) {
			return fmt.Errorf("task worker %s: %w", m.Config.WorkerID, err)
		}
		log.Error("task worker cannot recover its tasks while the Docker Engine is down: it claims no task until then", "err", err.Error(), "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, recoverRetryMax)
	}
}

// runnerCommand is `envvault runner`.
func (m *Main) runnerCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdRunner, "json")
	workerFlags(fs, c, false)
	shutdownFlag(fs, c)
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault runner [flags]",
		ShortHelp:  "run a task worker alone, without the HTTP API, beside its own Docker Engine",
		LongHelp: `Runs a task worker and nothing else: it claims the tasks queued in the
database, starts their containers on the Docker Engine of DOCKER_HOST (the
local socket if unset) and records their logs and end. Run one per Docker
host, each with its own --worker-id, against the PostgreSQL database of
DATABASE_URL that the serve processes use; give all of them the same
--baseline-env-file and --locked-names. serve and dev run a worker of their
own unless --no-worker.

Without DATABASE_URL the store is the SQLite file of --data-dir, which only
processes on this host can share: there, serve's own worker is enough, and a
runner is useful only beside a serve --no-worker.

SIGTERM stops claiming and returns; containers of running tasks keep
running, and the next start with the same --worker-id attaches to them.

` + envHelp + "\n\n" + keyHelp,
	})
}

// workerFlags are the flags of the commands that run a task worker; dev
// and serve also take --no-worker.
func workerFlags(fs *flag.FlagSet, c *Config, noWorker bool) {
	fs.StringVar(&c.BaselineEnvFile, "baseline-env-file", "", "dotenv file of the platform's baseline env, given to every task (see the README for its grammar)")
	fs.Func("locked-names", "comma-separated baseline names no profile or secret can override; no secret may take one (env BASELINE_LOCKED_NAMES)", func(s string) error {
		c.lockedByFlag = true
		c.LockedNames = append(c.LockedNames, splitNames(s)...)
		return nil
	})
	sandboxFlags(fs, c)
	backendFlags(fs, c)
	slotFlags(fs, c)
	oauth2Flags(fs, c)
	taskAPIFlags(fs, c) // task_api.go
	metricsFlag(fs, c)
	host, _ := os.Hostname()
	fs.StringVar(&c.WorkerID, "worker-id", host, "name of this process's task worker: unique among the processes sharing a database, and the same across restarts, so that a restart recovers its tasks")
	if noWorker {
		fs.BoolVar(&c.NoWorker, "no-worker", false, "run no task worker: tasks stay queued for envvault runner processes on the same database")
	}
}

// openOrchestrator is what dev, serve and runner start with: it reads the
// baseline env, opens the service (fresh: a new database) and builds the
// orchestrator on it.
func (m *Main) openOrchestrator(ctx context.Context) (svc *vault.Service, orch *orchestrator.Orchestrator, fresh bool, err error) {
	if err := m.loadBaseline(); err != nil {
		return nil, nil, false, err
	}
	svc, fresh, err = m.openService(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	if err := m.startMetrics(m.keys.CurrentID()); err != nil {
		return nil, nil, false, err
	}
	orch, err = m.newOrchestrator(svc)
	if err != nil {
		return nil, nil, false, err
	}
	return svc, orch, fresh, nil
}

// runRunner is `envvault runner`: the worker alone, without the API.
func (m *Main) runRunner(ctx context.Context) error {
	if m.Config.DatabaseURL == "" {
		m.logger.Warn("envvault runner on the SQLite store of --data-dir: only processes on this host share it. " +
			"To run tasks on several Docker hosts, set DATABASE_URL to the PostgreSQL database of your serve processes")
	}
	_, orch, _, err := m.openOrchestrator(ctx)
	if err != nil {
		return err
	}
	m.startWorker(orch)
	return nil
}
