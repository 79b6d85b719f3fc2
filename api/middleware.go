package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
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

// middleware installs, outermost first: the request id, the request log,
// panic recovery and the body limit.
func (s *Server) middleware() {
	s.echo.Use(
		dropBadRequestID,
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{
			TargetHeader: echo.HeaderXRequestID,
			RequestIDHandler: func(c echo.Context, id string) {
				req := c.Request()
				c.SetRequest(req.WithContext(context.WithValue(req.Context(), ctxRequestID, id)))
			},
		}),
		middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
			// HandleError writes the error response before the log line,
			// so the line has the status the client got.
			HandleError:  true,
			LogMethod:    true,
			LogURIPath:   true,
			LogRoutePath: true,
			LogStatus:    true,
			LogLatency:   true,
			LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
				// Never bodies, query strings or headers: they carry
				// tokens and secret values.
				attrs := []slog.Attr{
					slog.String("method", v.Method),
					slog.String("path", truncate(v.URIPath, 200)),
					slog.String("route", v.RoutePath),
					slog.Int("status", v.Status),
					slog.Duration("latency", v.Latency),
				}
				s.logger(c).LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
				return nil
			},
		}),
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
