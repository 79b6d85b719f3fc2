package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds how long /readyz waits for the store.
const readyTimeout = 2 * time.Second

func (s *Server) healthRoutes(e *echo.Echo) {
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
}

type statusJSON struct {
	Status string `json:"status"`
}

// healthz answers 200 while the process serves requests.
func (s *Server) healthz(c echo.Context) error {
	return writeJSON(c, http.StatusOK, statusJSON{"ok"})
}

// readyz answers 200 when the store answers, 503 otherwise.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	if err := s.svc.Ping(ctx); err != nil {
		s.logger(c).Warn("not ready: store does not answer", slog.Any("error", err))
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: "the database does not answer"}
	}
	return writeJSON(c, http.StatusOK, statusJSON{"ok"})
}
