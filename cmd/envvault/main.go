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

	"github.com/envvault/envvault/api"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
	"github.com/envvault/envvault/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "envvault: %v\n", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		fmt.Fprintf(os.Stderr, "envvault: %v\n", err)
		os.Exit(1)
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

// HTTP server limits. WriteTimeout bounds an ordinary response; a response
// that streams (GET /v1/tasks/:id/logs?follow=true) gets writeTimeout for
// each of its writes instead (see streams).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Main is the program: ParseFlags fills Config, Run does the command (and
// for dev and serve returns once the server listens), Wait blocks while it
// serves, Close shuts it down.
type Main struct {
	Config Config

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
	docker   *dockerclient.Client // nil without a worker
	server   *http.Server
	streams  *streams
	listener net.Listener
	serveErr chan error

	stopWorker context.CancelFunc
	workerDone chan error
}

// NewMain returns a Main that talks to the process's stdout, stderr and
// environment.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
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
	switch m.Config.Command {
	case cmdKeygen:
		_, err := fmt.Fprintln(m.Stdout, vault.GenerateKey())
		return err
	case cmdMigrate:
		return m.runMigrate(ctx)
	case cmdUserCreate:
		return m.runUserCreate(ctx)
	case cmdDev, cmdServe:
		return m.runServer(ctx)
	case cmdRunner:
		return m.runRunner(ctx)
	case cmdKeysRotate:
		return m.runKeysRotate(ctx)
	case cmdKeysStatus:
		return m.runKeysStatus(ctx)
	case cmdSecretsImport:
		return m.runSecretsImport(ctx)
	case cmdSecretsList:
		return m.runSecretsList(ctx)
	case cmdAuditVerify:
		return m.runAuditVerify(ctx)
	case cmdAuditPrune:
		return m.runAuditPrune(ctx)
	default:
		return fmt.Errorf("no command: run envvault --help")
	}
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

// runServer is dev and serve.
func (m *Main) runServer(ctx context.Context) error {
	if m.Config.Command == cmdDev && (m.Getenv("DATABASE_URL") != "" || m.Getenv("DATABASE_URL_FILE") != "") {
		m.logger.Warn("DATABASE_URL is ignored: envvault dev always uses SQLite in --data-dir; run envvault serve for PostgreSQL")
	}
	if err := m.loadBaseline(); err != nil {
		return err
	}
	svc, fresh, err := m.openService(ctx)
	if err != nil {
		return err
	}
	orch, err := m.newOrchestrator(svc)
	if err != nil {
		return err
	}

	var devToken string
	if m.Config.Command == cmdDev && fresh {
		u, token, err := svc.CreateUser(ctx, "dev")
		if err != nil {
			return fmt.Errorf("create the dev user: %w", err)
		}
		m.logger.Info("created the dev user", "user_id", u.ID)
		devToken = token
	}

	wt := writeTimeout
	if m.writeTimeout > 0 {
		wt = m.writeTimeout
	}
	m.streams = newStreams(wt)
	apiHandler := api.NewServer(api.Config{
		Service:      svc,
		Orchestrator: orch,
		Logger:       m.logger,
		BodyLimit:    m.Config.BodyLimit,
	}).Handler()
	// The API keeps /v1, /healthz and /readyz; the dashboard has the rest.
	mux := http.NewServeMux()
	for _, p := range []string{"/v1", "/v1/", "/healthz", "/readyz"} {
		mux.Handle(p, apiHandler)
	}
	mux.Handle("/", web.New(web.Config{Vault: svc, Orchestrator: orch, Logger: m.logger, Secure: m.Config.SecureCookies}))
	handler := m.streams.wrap(mux)

	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--addr, ADDR): %w", m.Config.Addr, err)
	}
	m.listener = ln
	m.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      wt,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for requests in flight, but a log stream lasts as
	// long as its task: end streams at once (see streams).
	m.server.RegisterOnShutdown(m.streams.shutdown)
	m.serveErr = make(chan error, 1)
	go func() {
		err := m.server.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- fmt.Errorf("http server: %w", err)
		}
		close(m.serveErr)
	}()

	url := "http://" + ln.Addr().String()
	m.logger.Info("listening", "addr", ln.Addr().String(), "url", url)
	if m.Config.NoWorker {
		m.logger.Info("no task worker (--no-worker): tasks stay queued until an envvault runner on this database claims them")
	} else {
		m.startWorker(orch)
	}
	if m.Config.Command == cmdDev {
		m.printDevBanner(url, devToken)
	}
	return nil
}

// openService opens the store, applies its migrations and checks the
// master keys against it. fresh says the store had never seen a key: it is
// a new database.
func (m *Main) openService(ctx context.Context) (svc *vault.Service, fresh bool, err error) {
	keys, err := m.keyring()
	if err != nil {
		return nil, false, err
	}
	store, applied, err := m.openStore(ctx)
	if err != nil {
		return nil, false, err
	}
	m.logger.Info("migrations applied", "store", m.storeName(), "applied", applied)
	checks, err := store.KeyChecks(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read key checks: %w", err)
	}
	svc = vault.NewService(store, keys, vault.Options{
		MaxSecrets: m.Config.MaxSecrets,
		Names:      vault.NamePolicy{Locked: m.baseline.Locked, Allowed: m.Config.AllowNames},
	})
	if err := svc.CheckKeys(ctx); err != nil {
		return nil, false, fmt.Errorf("master key from %s does not fit this database: %w", m.Config.Keys.Source, err)
	}
	m.logger.Info("master key checked", "key_id", keys.CurrentID(), "source", m.Config.Keys.Source, "previous_keys", len(m.Config.Keys.Previous))
	return svc, len(checks) == 0, nil
}

func (m *Main) runMigrate(ctx context.Context) error {
	// openStore applies the migrations; migrate is that alone.
	_, applied, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	if applied == 0 {
		_, err = fmt.Fprintf(m.Stdout, "%s: schema is up to date, no migration to apply\n", m.storeName())
		return err
	}
	_, err = fmt.Fprintf(m.Stdout, "%s: applied %d migrations\n", m.storeName(), applied)
	return err
}

func (m *Main) runUserCreate(ctx context.Context) error {
	svc, _, err := m.openService(ctx)
	if err != nil {
		return err
	}
	u, token, err := svc.CreateUser(ctx, m.Config.UserName)
	if err != nil {
		return fmt.Errorf("create user %q: %w", m.Config.UserName, err)
	}
	if m.Config.JSON {
		return writeJSON(m.Stdout, map[string]string{"user_id": u.ID, "token": token})
	}
	_, err = fmt.Fprintf(m.Stdout, "Created user %q.\n\n  user id: %s\n  token:   %s\n\n"+
		"The token is shown only this once (only its SHA-256 is stored). Use it as\n"+
		"  curl -H \"Authorization: Bearer $TOKEN\" http://HOST:PORT/v1/secrets\n",
		u.Name, u.ID, token)
	return err
}
