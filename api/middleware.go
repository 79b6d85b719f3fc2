package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/envvault/envvault/metrics"
)

// maxRequestIDLen bounds a request id a client sends; a longer one, or one
// with other characters than [A-Za-z0-9._:-], is replaced by a fresh one,
// since it is repeated in a response header and in every log line.
const maxRequestIDLen = 64

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxUserID
	ctxTokenID
)

// RequestID returns the request id of a request handled by a Server.
func RequestID(ctx context.Context) string { s, _ := ctx.Value(ctxRequestID).(string); return s }

// middleware installs, outermost first: the request id, the actor for the
// audit trail (audit.go), the request log
// (which also hands errors to the error handler), panic recovery and the
// body limit.
func (s *Server) middleware() {
	// The client address is the connection's peer: no header a client
	// can set is believed (see recordActor).
	s.echo.IPExtractor = echo.ExtractIPDirect()
	s.echo.Use(
		dropBadRequestID,
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{
			TargetHeader: echo.HeaderXRequestID,
			RequestIDHandler: func(c echo.Context, id string) {
				req := c.Request()
				c.SetRequest(req.WithContext(context.WithValue(req.Context(), ctxRequestID, id)))
			},
		}),
		s.recordActor,
		s.logRequests,
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			// Hand the panic on as an error: the error handler answers 500
			// and the request log records it.
			DisableErrorHandler: true,
			DisableStackAll:     true,
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.logger(c).Error("panic", slog.Any("panic", err), slog.String("stack", string(stack)))
				return fmt.Errorf("panic: %w", err)
			},
		}),
		s.limitBody,
	)
}

// logRequests answers an error the handler chain returns through the one
// error handler, then logs one line per request: method, path, route,
// status, latency, request id and user id. Never bodies, query strings or
// headers: they carry tokens and secret values.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			// Handled here, not by echo after the chain, so the line below
			// has the status the client got.
			c.Error(err)
		}
		req := c.Request()
		metrics.SetRoute(req.Context(), c.Path())
		s.logger(c).LogAttrs(req.Context(), slog.LevelInfo, "request",
			slog.String("method", truncate(req.Method, 20)),
			slog.String("path", truncate(req.URL.Path, 200)),
			slog.String("route", c.Path()),
			slog.Int("status", c.Response().Status),
			slog.Duration("latency", time.Since(start)),
		)
		return nil
	}
}

// dropBadRequestID removes an X-Request-Id a client sent that is too long
// or has odd characters, so that RequestID makes a fresh one.
func dropBadRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if ids := h.Values(echo.HeaderXRequestID); len(ids) > 1 || (len(ids) == 1 && !goodRequestID(ids[0])) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func goodRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// limitBody caps every request body at the body limit, whoever reads it;
// decodeJSON also refuses an over-long body up front.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, s.bodyLimit)
		}
		return next(c)
	}
}

// logger returns the server's logger with the request id and, once
// authenticated, the user id of the request.
func (s *Server) logger(c echo.Context) *slog.Logger {
	ctx := c.Request().Context()
	l := s.log.With(slog.String("request_id", RequestID(ctx)))
	if uid := UserID(ctx); uid != "" {
		l = l.With(slog.String("user_id", uid))
	}
	return l
}
