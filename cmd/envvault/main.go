// Command envvault is the envvault secrets vault: one static binary that
// serves the HTTP API over an embedded SQLite file (envvault dev) or
// PostgreSQL (envvault serve with DATABASE_URL), and runs the task worker
// that starts agents' containers on Docker (in serve and dev, or alone:
// envvault runner).
//
// main only wires the process to Main: flags and environment in, signals
// in, exit code out. Everything else is in Main so that tests run it in
// process, on 127.0.0.1:0, exactly as the binary does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	dockerclient "github.com/docker/docker/client"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/seal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "envvault: %v\n", err)
		os.Exit(exitCode(err, exitUsage))
	}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		fmt.Fprintf(os.Stderr, "envvault: %v\n", err)
		os.Exit(exitCode(err, exitFailure))
	}
	err := m.Wait(ctx)
	// A second signal during shutdown kills the process the default way.
	stop()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "envvault: %v\n", err)
		os.Exit(1)
	}
}

// Main is the program: ParseFlags fills Config, Run does the command (and
// for dev and serve returns once the server listens), Wait blocks while it
// serves, Close shuts it down.
type Main struct {
	Config Config

	// Stdin gives the client commands a secret's value or a token, never
	// their arguments.
	Stdin io.Reader
	// Stdout gets what a command prints for the user (the dev banner, the
	// new token of `user create`, a new key); Stderr gets the logs.
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the variables that are never flags: ENCRYPTION_KEY*,
	// DATABASE_URL*. Flags read their own variables (ADDR, DATA_DIR, ...)
	// through ff from the process environment.
	Getenv func(string) string

	// writeTimeout, if not 0, replaces the server's WriteTimeout: tests
	// shorten it.
	writeTimeout time.Duration

	logger   *slog.Logger
	baseline orchestrator.Baseline
	store    db
	keys     *seal.Keyring        // the keyring openService checked; the dashboard signs sessions under it
	docker   *dockerclient.Client // nil without a worker
	server   *http.Server
	streams  *streams
	listener net.Listener
	serveErr chan error
	metrics  metricsServer // --metrics-addr (metrics.go)
	// flushAuth writes the failed authentications counted so far to the
	// audit trail (vault.Service.FlushAuthFailures): Close calls it once
	// the server has stopped, so that none counted is lost.
	flushAuth func(context.Context) error

	// helpFor is the command whose help was asked for (-h, --help), and
	// helpPath its full name; ParseFlags prints it.
	helpFor  *ffcli.Command
	helpPath string

	stopWorker context.CancelFunc
	workerDone chan error
}

// NewMain returns a Main that talks to the process's stdout, stderr and
// environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Addr returns the address the server listens on, with the real port when
// --addr asked for port 0, or "" before Run.
func (m *Main) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// Run carries out the command ParseFlags selected. For dev and serve it
// reads the baseline env, opens the store, applies migrations, checks the
// master keys, starts the HTTP server and the task worker, and returns;
// runner does the same without the server. Wait then blocks until it
// should stop.
func (m *Main) Run(ctx context.Context) error {
	m.logger = m.newLogger()
	run := map[string]func(context.Context) error{
		cmdKeygen:        m.runKeygen,
		cmdMigrate:       m.runMigrate,
		cmdUserCreate:    m.runUserCreate,
		cmdDev:           m.runServer,
		cmdServe:         m.runServer,
		cmdRunner:        m.runRunner,
		cmdKeysRotate:    m.runKeysRotate,
		cmdKeysStatus:    m.runKeysStatus,
		cmdSecretsImport: m.runSecretsImport,
		cmdSecretsList:   m.runSecretsList,
		cmdAuditVerify:   m.runAuditVerify,
		cmdAuditPrune:    m.runAuditPrune,
		cmdBench:         m.runBench,
		cmdHelp:          m.runHelp,
		cmdVersion:       m.runVersion,
		cmdCompletion:    m.runCompletion,
		cmdLogout:        m.runLogout,
		cmdUserList:      m.runUserList,
	}[m.Config.Command]
	if run == nil {
		if ok, err := m.runRemote(ctx); ok {
			return err
		}
		return fmt.Errorf("no command: run envvault --help")
	}
	return run(ctx)
}

// Wait blocks until ctx is done (a signal), or the server or the worker
// fails. It returns at once for commands that neither serve nor work.
func (m *Main) Wait(ctx context.Context) error {
	if m.server == nil && m.workerDone == nil {
		return nil
	}
	// A nil channel (no server, no worker) never delivers.
	select {
	case <-ctx.Done():
		m.logger.Info("shutting down", "reason", context.Cause(ctx).Error())
		return nil
	case err := <-m.serveErr:
		return err
	case err := <-m.workerDone:
		return err
	}
}

// Close stops the task worker (it claims no more tasks; containers of
// running tasks keep running, for the next start to attach to), then the
// HTTP server gracefully, letting requests in flight finish for up to
// --shutdown-timeout before it cuts them off and ending log streams at
// once, then closes the store. It is safe to call more than once.
func (m *Main) Close() error {
	var errs []error
	if m.stopWorker != nil {
		m.stopWorker()
		timer := time.NewTimer(m.Config.ShutdownTimeout)
		select {
		case err := <-m.workerDone:
			// Wait has returned an error of the worker already, if any;
			// the channel is closed then.
			if err != nil {
				errs = append(errs, err)
			}
			m.logger.Info("task worker stopped: containers of running tasks keep running; the next start with this --worker-id attaches to them", "worker", m.Config.WorkerID)
		case <-timer.C:
			m.logger.Warn("task worker still busy after --shutdown-timeout: closing anyway", "worker", m.Config.WorkerID)
		}
		timer.Stop()
		m.stopWorker = nil
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		err := m.server.Shutdown(ctx)
		cancel()
		if err != nil {
			m.logger.Warn("graceful shutdown cut short: closing open connections", "error", err.Error())
			if err := m.server.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close http server: %w", err))
			}
		}
		if err, ok := <-m.serveErr; ok && err != nil {
			errs = append(errs, err)
		}
		m.server = nil
		m.logger.Info("http server stopped")
	}
	if m.flushAuth != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		if err := m.flushAuth(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		m.flushAuth = nil
	}
	if err := m.closeMetrics(); err != nil {
		errs = append(errs, err)
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		m.store = nil
	}
	if m.docker != nil {
		if err := m.docker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close Docker client: %w", err))
		}
		m.docker = nil
	}
	return errors.Join(errs...)
}

func (m *Main) newLogger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: m.Config.LogLevel}
	if m.Config.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(m.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(m.Stderr, opts))
}
