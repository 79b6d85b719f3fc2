// Package metrics is envvault's Prometheus metrics, on a registry of its
// own (never the client library's global one), served by Handler on an
// address of the operator's choosing apart from the API's, since the API
// is reachable by tenants and the metrics are the platform team's.
//
// No label ever holds what a user or an agent wrote: routes are templates
// (/v1/secrets/:id, never a path), methods, status codes, task states and
// reasons all come from fixed sets, and a value outside its set is counted
// under "other". The README's "Metrics" section lists every family.
//
// A nil *Metrics is valid and measures nothing, so that code built
// without --metrics-addr needs no branches.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every envvault family.
const namespace = "envvault"

// Metrics holds every family envvault records itself.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec

	taskStart     prometheus.Histogram
	tasksFinished *prometheus.CounterVec
	maskedBytes   prometheus.Counter
	maskSeconds   prometheus.Counter

	rotation rotation
}

// New returns the metrics on a new registry, with the Go runtime's and the
// process's collectors beside envvault's own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.httpMetrics()
	m.taskMetrics()
	m.rotationMetrics()
	return m
}

// Registry returns the registry the metrics are on, for a collector of the
// caller's (WatchStore registers one).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats. A
// collector that fails leaves its families out and the rest is served
// (promhttp.ContinueOnError); the failure is in the error log.
func (m *Metrics) Handler(errorLog promhttp.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	})
}

// Scrape limits: a scrape reads the store (WatchStore), so a flood of
// scrapes must not become a flood of queries.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
)
