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
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/envvault/envvault/api"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
	"github.com/envvault/envvault/web"
)

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

// devCommand is `envvault dev`.
func (m *Main) devCommand() *ffcli.Command {
	return m.serverCommand(cmdDev, "127.0.0.1:8080", "text", &ffcli.Command{
		ShortUsage: "envvault dev [flags]",
		ShortHelp:  "run a development vault: SQLite in --data-dir, a generated key, a ready user",
		LongHelp: `Runs the vault for development on 127.0.0.1:8080 with text logs. The store
is the SQLite file <data-dir>/envvault.db (DATABASE_URL is ignored).

Unless ENCRYPTION_KEY is set, the master key is <data-dir>/dev.key, generated
with mode 0600 on first run and reused after. It sits beside the data it
protects: it is for development only, never for real secrets.

On the first start with an empty store it creates the user "dev" and prints
its API token, once, with an example curl.

` + envHelp,
	})
}

// serveCommand is `envvault serve`.
func (m *Main) serveCommand() *ffcli.Command {
	return m.serverCommand(cmdServe, "0.0.0.0:8080", "json", &ffcli.Command{
		ShortUsage: "envvault serve [flags]",
		ShortHelp:  "run the vault in production (needs ENCRYPTION_KEY)",
		LongHelp: `Runs the vault with JSON logs on 0.0.0.0:8080. Start-up applies the
migrations, then proves ENCRYPTION_KEY opens the database's key check and
every data key, and stops with a clear message if not.

` + envHelp + "\n\n" + keyHelp,
	})
}

// serverCommand completes help as dev or serve: the store and log flags
// (--log-format logFormat by default), the server's flags (--addr addr by
// default) and the worker's.
func (m *Main) serverCommand(command, addr, logFormat string, help *ffcli.Command) *ffcli.Command {
	c, fs := m.newCommand(command, logFormat)
	serverFlags(fs, c, addr)
	workerFlags(fs, c, true)
	return m.leaf(c, fs, help)
}

// serverFlags are the flags of the HTTP server; addr is the default of
// --addr.
func serverFlags(fs *flag.FlagSet, c *Config, addr string) {
	fs.StringVar(&c.Addr, "addr", addr, "address to listen on, host:port (port 0 picks a free one, logged as \"listening\")")
	fs.IntVar(&c.MaxSecrets, "max-secrets", 1000, "most secrets one user may hold")
	fs.Int64Var(&c.BodyLimit, "body-limit", api.DefaultBodyLimit, "largest request body in bytes (413 above)")
	limitFlags(fs, c)
	fs.BoolVar(&c.SecureCookies, "secure-cookies", false, "mark the dashboard's cookies Secure even on plain HTTP, behind a proxy that terminates TLS (requests over TLS always get them)")
	publicURLFlag(fs, c)
	fs.Func("allow-names", "comma-separated secret names to take off the denied list (LD_PRELOAD, NODE_OPTIONS, ...)", func(s string) error {
		c.AllowNames = append(c.AllowNames, splitNames(s)...)
		return nil
	})
	shutdownFlag(fs, c)
}

// runServer is dev and serve: the HTTP server, and the task worker unless
// --no-worker.
func (m *Main) runServer(ctx context.Context) error {
	if m.Config.Command == cmdDev && (m.Getenv("DATABASE_URL") != "" || m.Getenv("DATABASE_URL_FILE") != "") {
		m.logger.Warn("DATABASE_URL is ignored: envvault dev always uses SQLite in --data-dir; run envvault serve for PostgreSQL")
	}
	svc, orch, fresh, err := m.openOrchestrator(ctx)
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
	if err := m.serve(m.handler(svc, orch)); err != nil {
		return err
	}
	url := "http://" + m.Addr()
	m.logger.Info("listening", "addr", m.Addr(), "url", url)
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

// serverWriteTimeout is the server's WriteTimeout, and a stream's for each
// write.
func (m *Main) serverWriteTimeout() time.Duration {
	if m.writeTimeout > 0 {
		return m.writeTimeout
	}
	return writeTimeout
}

// handler is what the server serves: the API on /v1, /healthz and /readyz,
// the dashboard on the rest, each request cancellable by m.streams.
func (m *Main) handler(svc *vault.Service, orch *orchestrator.Orchestrator) http.Handler {
	m.streams = newStreams(m.serverWriteTimeout())
	m.flushAuth = svc.FlushAuthFailures
	writeRate := m.Config.WriteRate
	if writeRate <= 0 {
		writeRate = -1 // api.Config: no limit
	}
	apiHandler := api.NewServer(api.Config{
		Service:         svc,
		Orchestrator:    orch,
		Logger:          m.logger,
		BodyLimit:       m.Config.BodyLimit,
		WritesPerSecond: writeRate,
		WriteBurst:      m.Config.WriteBurst,
		PublicURL:       m.Config.PublicURL,
	}).Handler()
	mux := http.NewServeMux()
	for _, p := range []string{"/v1", "/v1/", "/healthz", "/readyz"} {
		mux.Handle(p, apiHandler)
	}
	mux.Handle("/", web.New(web.Config{Vault: svc, Keys: m.keys, Orchestrator: orch, Logger: m.logger, Secure: m.Config.SecureCookies,
		SessionIdle: m.Config.SessionIdle, PublicURL: m.Config.PublicURL}))
	return m.streams.wrap(m.metrics.m.Instrument(mux))
}

// serve listens on --addr and serves h in the background until Close;
// Wait returns the server's error if it fails.
func (m *Main) serve(h http.Handler) error {
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--addr, ADDR): %w", m.Config.Addr, err)
	}
	m.listener = ln
	m.server = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      m.serverWriteTimeout(),
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
	return nil
}

// printDevBanner tells the user of `envvault dev` where the vault is and,
// on the first start, the dev user's token: the only time it is shown.
func (m *Main) printDevBanner(url, token string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nenvvault dev is running at %s (Ctrl-C stops it)\n\n", url)
	fmt.Fprintf(&b, "Dashboard: open %s/ in a browser and sign in with the API token.\n\n", url)
	if token == "" {
		fmt.Fprintf(&b, "The token of the user \"dev\" was printed when %s was first set up.\n", m.Config.DataDir)
		fmt.Fprintf(&b, "Lost it? Make another user while this runs:\n  envvault user create alice --data-dir %s\n\n", m.Config.DataDir)
		fmt.Fprintf(&b, "  export ENVVAULT_URL=%s\n\n", url)
	} else {
		fmt.Fprintf(&b, "Created the user \"dev\". Its API token is shown only this once:\n\n")
		fmt.Fprintf(&b, "  export ENVVAULT_URL=%s\n", url)
		fmt.Fprintf(&b, "  export ENVVAULT_TOKEN=%s\n\n", token)
		fmt.Fprintf(&b, "Try it (the value comes from stdin, never from an argument):\n")
		fmt.Fprintf(&b, "  printf %%s ghp_example | envvault secrets set GITHUB_TOKEN\n")
		fmt.Fprintf(&b, "  envvault secrets list\n")
		fmt.Fprintf(&b, "  curl -s \"$ENVVAULT_URL/v1/secrets\" -H \"Authorization: Bearer $ENVVAULT_TOKEN\"\n\n")
	}
	io.WriteString(m.Stdout, b.String())
}
