package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an authentication failed, the only values of
// envvault_auth_failures_total's reason label. The code that refuses a
// credential says which by calling AuthFailure; a 401 answer whose code
// said nothing counts as ReasonOther.
const (
	ReasonMissing   = "missing"   // no credential at all
	ReasonMalformed = "malformed" // not of the token's (or cookie's) form
	ReasonUnknown   = "unknown"   // well formed, but no such token or session
	ReasonMismatch  = "mismatch"  // the token's secret part does not match
	ReasonExpired   = "expired"   // past its expiry (token) or idle/absolute timeout (session)
	ReasonRevoked   = "revoked"   // revoked, or its session was signed out
	ReasonScope     = "scope"     // valid, but its scope does not allow the route
	ReasonSignIn    = "sign_in"   // a dashboard sign-in refused
	ReasonOther     = "other"
)

// Reasons a request was refused by a limit, the only values of
// envvault_rate_limited_total's reason label. The limiter says which by
// calling RateLimited; a 429 answer whose code said nothing counts as
// LimitOther.
const (
	LimitFailedAuthAddress = "failed_auth_address" // failed authentications from one client address
	LimitFailedAuthToken   = "failed_auth_token"   // failed authentications with one token id
	LimitWrites            = "writes"              // a user's writes
	LimitQueuedTasks       = "queued_tasks"        // a user's queued tasks (--max-queued-per-user)
	LimitOther             = "other"
)

var (
	authReasons  = set(ReasonMissing, ReasonMalformed, ReasonUnknown, ReasonMismatch, ReasonExpired, ReasonRevoked, ReasonScope, ReasonSignIn, ReasonOther)
	limitReasons = set(LimitFailedAuthAddress, LimitFailedAuthToken, LimitWrites, LimitQueuedTasks, LimitOther)
	methods      = set(http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions)
)

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// Route labels of requests no route template matched, and of requests
// whose handler named none.
const (
	routeUnmatched = "unmatched"
)

// maxRouteLen bounds a route label: a template is short, and a longer one
// means a caller passed something else.
const maxRouteLen = 100

func (m *Metrics) httpMetrics() {
	labels := []string{"route", "method", "code"}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by route template, method and status code.",
	}, labels)
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time from a request's arrival to its handler's return, by route template, method and status code (a followed log stream lasts as long as its task).",
		Buckets: prometheus.DefBuckets,
	}, labels)
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "auth_failures_total",
		Help: "Authentications refused (API tokens, dashboard sessions and sign-ins), by reason.",
	}, []string{"reason"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "rate_limited_total",
		Help: "Requests refused by a limit (429), by which limit.",
	}, []string{"reason"})
	for r := range authReasons {
		m.authFailures.WithLabelValues(r)
	}
	for r := range limitReasons {
		m.rateLimited.WithLabelValues(r)
	}
	m.reg.MustRegister(m.requests, m.latency, m.authFailures, m.rateLimited)
}

// request is what the handlers of one request tell Instrument.
type request struct {
	route       string
	authReason  string
	limitReason string
}

type ctxKey struct{}

func requestOf(ctx context.Context) *request {
	r, _ := ctx.Value(ctxKey{}).(*request)
	return r
}

// SetRoute names the route template that serves the request of ctx (echo's
// c.Path(), a ServeMux pattern), for the route label. Never a path: it
// would hold ids. Outside Instrument it does nothing.
func SetRoute(ctx context.Context, route string) {
	if r := requestOf(ctx); r != nil {
		r.route = route
	}
}

// AuthFailure records that the request of ctx failed authentication for
// reason, one of the Reason constants (any other counts as ReasonOther).
// Call it once per refused credential; outside Instrument it does nothing.
func AuthFailure(ctx context.Context, reason string) {
	if r := requestOf(ctx); r != nil {
		r.authReason = reason
	}
}

// RateLimited records that the request of ctx was refused by the limit
// reason, one of the Limit constants (any other counts as LimitOther).
// Outside Instrument it does nothing.
func RateLimited(ctx context.Context, reason string) {
	if r := requestOf(ctx); r != nil {
		r.limitReason = reason
	}
}

// Instrument counts and times every request h serves, by the route its
// handler named (SetRoute), its method and its status, and counts the
// authentication failures and limit refusals it was told of, or that its
// status (401, 429) says. On a nil *Metrics it returns h.
func (m *Metrics) Instrument(h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &request{}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			m.observe(st, r.Method, sw.code(), time.Since(start))
		}()
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
	})
}

func (m *Metrics) observe(st *request, method string, code int, took time.Duration) {
	route := st.route
	if route == "" || len(route) > maxRouteLen {
		route = routeUnmatched
	}
	// A ServeMux pattern may start with its method ("GET /login").
	if i := strings.IndexByte(route, ' '); i >= 0 {
		route = route[i+1:]
	}
	if !methods[method] {
		method = "other"
	}
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(route, method, c).Inc()
	m.latency.WithLabelValues(route, method, c).Observe(took.Seconds())
	switch {
	case st.authReason != "":
		m.authFailures.WithLabelValues(oneOf(authReasons, st.authReason, ReasonOther)).Inc()
	case code == http.StatusUnauthorized:
		m.authFailures.WithLabelValues(ReasonOther).Inc()
	}
	switch {
	case st.limitReason != "":
		m.rateLimited.WithLabelValues(oneOf(limitReasons, st.limitReason, LimitOther)).Inc()
	case code == http.StatusTooManyRequests:
		m.rateLimited.WithLabelValues(LimitOther).Inc()
	}
}

func oneOf(allowed map[string]bool, v, other string) string {
	if allowed[v] {
		return v
	}
	return other
}

// statusWriter notes the status of a response. Unwrap lets
// http.ResponseController reach the writer below (to flush a stream, set
// its deadline).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush flushes the writer below, for handlers that look for
// http.Flusher rather than use http.ResponseController.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status the client got: 200 if the handler wrote nothing.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
