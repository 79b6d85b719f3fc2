package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/postgres"
)

// metricsFlag is --metrics-addr, of the commands that serve, work or run
// long (dev, serve, runner, keys rotate).
func metricsFlag(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this host:port, apart from --addr: "+
		"keep it where only the platform's scraper reaches it, never tenants (off when empty)")
}

// metricsServer is the listener of --metrics-addr and what it serves.
type metricsServer struct {
	m        *metrics.Metrics // nil without --metrics-addr: measures nothing
	server   *http.Server
	listener net.Listener
	done     chan error
}

// MetricsAddr returns the address the metrics listen on, with the real
// port when --metrics-addr asked for port 0, or "" if they are off.
func (m *Main) MetricsAddr() string {
	if m.metrics.listener == nil {
		return ""
	}
	return m.metrics.listener.Addr().String()
}

// startMetrics, with --metrics-addr, makes the metrics, has every scrape
// read the task counts and data keys (currentKeyID's and others') from the
// open store, and serves them
// at /metrics on their own listener (and nothing else there: the API and
// the dashboard are not reachable through it, nor the metrics through
// --addr). Call it after the store is open and before the orchestrator is
// made.
func (m *Main) startMetrics(currentKeyID string) error {
	addr := m.Config.MetricsAddr
	if addr == "" {
		return nil
	}
	st, ok := m.store.(metrics.StoreStats)
	if !ok {
		return fmt.Errorf("--metrics-addr: the store %s cannot count tasks for the metrics", m.storeName())
	}
	mx := metrics.New()
	mx.WatchStore(st, currentKeyID, m.logger)
	if db, ok := m.store.(*postgres.DB); ok {
		mx.WatchGroupCommits(func() metrics.GroupCounts {
			s := db.GroupStats()
			return metrics.GroupCounts{Groups: s.Groups, Writes: s.Members, Alone: s.Alone}
		})
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--metrics-addr, METRICS_ADDR): %w", addr, err)
	}
	errorLog := slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", mx.Handler(errorLog))
	m.metrics = metricsServer{m: mx, listener: ln, done: make(chan error, 1), server: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      m.serverWriteTimeout(),
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}}
	go func(s *http.Server, done chan<- error) {
		err := s.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			// The API and the worker go on without their metrics: say so
			// now, and again at Close.
			m.logger.Error("metrics server stopped: no metrics until restart", "addr", ln.Addr().String(), "error", err.Error())
			done <- fmt.Errorf("metrics server: %w", err)
		}
		close(done)
	}(m.metrics.server, m.metrics.done)
	m.logger.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return nil
}

// closeMetrics stops the metrics listener: a scrape in flight gets the
// shutdown timeout (--shutdown-timeout, or its default for keys rotate,
// which has no such flag) to finish.
func (m *Main) closeMetrics() error {
	s := m.metrics.server
	if s == nil {
		return nil
	}
	m.metrics.server = nil
	timeout := m.Config.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		return errors.Join(fmt.Errorf("shut down metrics server: %w", err), s.Close())
	}
	if err, ok := <-m.metrics.done; ok && err != nil {
		return err
	}
	return nil
}
