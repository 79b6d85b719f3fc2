package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	dockerclient "github.com/docker/docker/client"

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
	var r *runner.Runner
	if !m.Config.NoWorker {
		cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
		if err != nil {
			// Only a malformed DOCKER_* setting gets here.
			return nil, fmt.Errorf("the Docker client cannot be made from DOCKER_HOST and the other DOCKER_* variables: %w", err)
		}
		m.docker = cli
		r = runner.New(cli, runner.Options{})
	}
	return orchestrator.New(orchestrator.Config{
		Vault:    svc,
		Store:    m.store,
		Runner:   r,
		Baseline: m.baseline,
		Worker:   m.Config.WorkerID,
		Logger:   m.logger.With("worker", m.Config.WorkerID),
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

// runRunner is `envvault runner`: the worker alone, without the API.
func (m *Main) runRunner(ctx context.Context) error {
	if m.Config.DatabaseURL == "" {
		m.logger.Warn("envvault runner on the SQLite store of --data-dir: only processes on this host share it. " +
			"To run tasks on several Docker hosts, set DATABASE_URL to the PostgreSQL database of your serve processes")
	}
	if err := m.loadBaseline(); err != nil {
		return err
	}
	svc, _, err := m.openService(ctx)
	if err != nil {
		return err
	}
	orch, err := m.newOrchestrator(svc)
	if err != nil {
		return err
	}
	m.startWorker(orch)
	return nil
}
