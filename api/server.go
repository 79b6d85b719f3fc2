// Package api is envvault's HTTP API on echo v4: strict JSON in, one error
// shape out, bearer-token auth, and an OpenAPI document kept true by tests.
//
// Each resource registers its routes from its own file (secrets.go,
// profiles.go, tasks.go, health.go, openapi.go) through routes in this
// file; a new resource adds a file and one line there.
package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/internal/ratelimit"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// DefaultBodyLimit is the largest request body accepted unless configured.
const DefaultBodyLimit = 256 << 10

// Config configures a Server.
type Config struct {
	Service   *vault.Service
	Logger    *slog.Logger // slog.Default() if nil
	BodyLimit int64        // bytes; DefaultBodyLimit if 0 or less
	// Orchestrator serves the task routes; if nil they answer 503
	// unavailable (the routes stay registered and documented).
	Orchestrator *orchestrator.Orchestrator
	// WritesPerSecond and WriteBurst limit each user's writes (limits.go):
	// DefaultWritesPerSecond and DefaultWriteBurst if 0, no limit if
	// WritesPerSecond is negative.
	WritesPerSecond float64
	WriteBurst      int
	// PublicURL is the dashboard's address as browsers reach it: an
	// OAuth2 authorization redirects to vault.OAuth2CallbackURL(PublicURL).
	// "" takes the scheme and host of each request.
	PublicURL string
}

// Server serves the API. It sets no timeouts: the http.Server that carries
// Handler does.
type Server struct {
	svc       *vault.Service
	orch      *orchestrator.Orchestrator
	log       *slog.Logger
	bodyLimit int64
	echo      *echo.Echo
	// v1 registers routes under /v1 that require a bearer token.
	v1 authed
	// writes limits each user's writes (limits.go); nil if off.
	writes     *ratelimit.Set
	writeRate  float64
	writeBurst int
	publicURL  string // Config.PublicURL
}

// NewServer returns a Server with every route registered.
func NewServer(c Config) *Server {
	s := &Server{svc: c.Service, orch: c.Orchestrator, log: c.Logger, bodyLimit: c.BodyLimit, publicURL: c.PublicURL}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.bodyLimit <= 0 {
		s.bodyLimit = DefaultBodyLimit
	}
	s.writes = newWriteLimiter(c)
	s.writeRate, s.writeBurst = c.WritesPerSecond, c.WriteBurst
	if s.writeRate == 0 {
		s.writeRate = DefaultWritesPerSecond
	}
	if s.writeBurst <= 0 {
		s.writeBurst = DefaultWriteBurst
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard) // everything worth saying goes through slog
	e.HTTPErrorHandler = s.handleError
	s.echo = e
	s.middleware()
	s.routes()
	return s
}

// Handler returns the http.Handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }

// routes registers every route. Unauthenticated routes go on s.echo,
// authenticated ones on s.v1.
func (s *Server) routes() {
	s.healthRoutes(s.echo)
	s.openapiRoutes(s.echo)
	s.v1 = authed{group: s.echo.Group("/v1"), auth: s.authenticate, scope: s.checkScope, limit: s.limitWritesOf}
	s.secretRoutes(s.v1)
	s.historyRoutes(s.v1)
	s.profileRoutes(s.v1)
	s.taskRoutes(s.v1)
	s.secretRequestRoutes(s.v1)
	s.taskAPIRoutes(s.v1)
	s.auditRoutes(s.v1)
	s.tokenRoutes(s.v1)
	s.oauth2FlowRoutes(s.v1)
}

// authed registers routes on a group, each behind the auth middleware,
// then the scope check (scopes.go), then the write limit (limits.go).
// (Group-level middleware would do,
// but echo then adds a catch-all route to the group that answers 404
// where 405 is right.)
type authed struct {
	group *echo.Group
	auth  echo.MiddlewareFunc
	scope echo.MiddlewareFunc
	limit echo.MiddlewareFunc
}

// GET registers an authenticated GET route.
func (a authed) GET(path string, h echo.HandlerFunc) *echo.Route {
	return a.group.GET(path, h, a.auth, a.scope, a.limit)
}

// POST registers an authenticated POST route.
func (a authed) POST(path string, h echo.HandlerFunc) *echo.Route {
	return a.group.POST(path, h, a.auth, a.scope, a.limit)
}

// PUT registers an authenticated PUT route.
func (a authed) PUT(path string, h echo.HandlerFunc) *echo.Route {
	return a.group.PUT(path, h, a.auth, a.scope, a.limit)
}

// PATCH registers an authenticated PATCH route.
func (a authed) PATCH(path string, h echo.HandlerFunc) *echo.Route {
	return a.group.PATCH(path, h, a.auth, a.scope, a.limit)
}

// DELETE registers an authenticated DELETE route.
func (a authed) DELETE(path string, h echo.HandlerFunc) *echo.Route {
	return a.group.DELETE(path, h, a.auth, a.scope, a.limit)
}

// writeJSON answers status with v as JSON. It marshals first, so a failure
// leaves the response unwritten for the error handler.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, echo.MIMEApplicationJSON, b)
}
