// Package api is envvault's HTTP API on echo v4: strict JSON in, one error
// shape out, bearer-token auth, and an OpenAPI document kept true by tests.
//
// Each resource registers its routes from its own file (secrets.go,
// profiles.go, health.go, openapi.go) through routes in this file; a new
// resource adds a file and one line there.
package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// DefaultBodyLimit is the largest request body accepted unless configured.
const DefaultBodyLimit = 256 << 10

// Config configures a Server.
type Config struct {
	Service   *vault.Service
	Logger    *slog.Logger // slog.Default() if nil
	BodyLimit int64        // bytes; DefaultBodyLimit if 0 or less
}

// Server serves the API. It sets no timeouts: the http.Server that carries
// Handler does.
type Server struct {
	svc       *vault.Service
	log       *slog.Logger
	bodyLimit int64
	echo      *echo.Echo
	// v1 is the /v1 group; every route on it requires a bearer token.
	v1 *echo.Group
}

// NewServer returns a Server with every route registered.
func NewServer(c Config) *Server {
	s := &Server{svc: c.Service, log: c.Logger, bodyLimit: c.BodyLimit}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.bodyLimit <= 0 {
		s.bodyLimit = DefaultBodyLimit
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
	s.v1 = s.echo.Group("/v1", s.authenticate)
	s.secretRoutes(s.v1)
	s.profileRoutes(s.v1)
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
