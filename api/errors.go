package api

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// Error codes of the API's own, beside the vault codes (vault.EINVALID and
// the rest), which keep their names on the wire.
const (
	codeMalformedJSON        = "malformed_json"
	codeBodyTooLarge         = "body_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeMethodNotAllowed     = "method_not_allowed"
	codeUnavailable          = "unavailable"
)

// StoreRetryAfter is when a client answered 503 because the store cannot be
// reached is told to try again (Retry-After): long enough for a pool to
// reconnect after a restart or fail-over, short enough not to stall tasks.
const StoreRetryAfter = 5 * time.Second

// statusOf maps each vault error code to its one HTTP status.
var statusOf = map[string]int{
	vault.EINVALID:      http.StatusUnprocessableEntity,
	vault.ENOTFOUND:     http.StatusNotFound,
	vault.ECONFLICT:     http.StatusConflict,
	vault.EUNAUTHORIZED: http.StatusUnauthorized,
	vault.EFORBIDDEN:    http.StatusForbidden,
	vault.ELIMIT:        http.StatusTooManyRequests,
	vault.EUNAVAILABLE:  http.StatusServiceUnavailable,
	vault.EINTERNAL:     http.StatusInternalServerError,
}

// apiError is an error the API itself decides, with its status. Message is
// safe to show to the client.
type apiError struct {
	Status  int
	Code    string
	Field   string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

var errUnsupportedMediaType = &apiError{
	Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMediaType,
	Message: "Content-Type must be application/json",
}

func errBodyTooLarge(limit int64) *apiError {
	return &apiError{
		Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes", limit),
	}
}

// errorBody is the one error shape of every response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// handleError is the echo HTTPErrorHandler: the one place an error becomes
// a status and a body. Errors it does not know are logged with the request
// id and answered 500 "internal error".
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		// Too late to answer; the client already has a status.
		s.logger(c).Error("error after response was sent", slog.Any("error", err))
		return
	}
	status, body := s.errorResponse(err, c)
	if status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="envvault"`)
	}
	if status == http.StatusTooManyRequests {
		// A limit that says when to retry (failed authentication, writes:
		// vault.LimitError), else a full task queue (orchestrator.QueueFull).
		retry := orchestrator.QueueRetryAfter
		if d, ok := vault.RetryAfter(err); ok {
			retry = d
		}
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
	}
	if vault.ErrorCode(err) == vault.EUNAVAILABLE {
		// The store cannot be reached (openapi.json: Unavailable).
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(StoreRetryAfter.Seconds())))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := writeJSON(c, status, body); werr != nil {
		s.logger(c).Warn("write error response", slog.Any("error", werr))
	}
}

// errorResponse decides the status and body for err, logging the errors
// the client is not told about.
func (s *Server) errorResponse(err error, c echo.Context) (int, errorBody) {
	var (
		ae     *apiError
		ve     *vault.Error
		he     *echo.HTTPError
		maxErr *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status, errorBody{errorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field}}
	case errors.As(err, &ve) && ve.Code != vault.EINTERNAL:
		status, ok := statusOf[ve.Code]
		if ok {
			return status, errorBody{errorDetail{Code: ve.Code, Message: ve.Message, Field: ve.Field}}
		}
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, errorBody{errorDetail{Code: codeBodyTooLarge,
			Message: fmt.Sprintf("request body is larger than %d bytes", maxErr.Limit)}}
	case errors.As(err, &he):
		if status, body, ok := echoError(he, c); ok {
			return status, body
		}
	}
	s.logger(c).Error("internal error", slog.Any("error", err))
	return http.StatusInternalServerError, errorBody{errorDetail{Code: vault.EINTERNAL, Message: "internal error"}}
}

// echoError maps the errors echo's router returns (no route, wrong method)
// to the error shape. ok is false for any other, which nothing here returns.
func echoError(he *echo.HTTPError, c echo.Context) (int, errorBody, bool) {
	req := c.Request()
	var code, msg string
	switch he.Code {
	case http.StatusNotFound:
		code, msg = vault.ENOTFOUND, "no such route: "+req.Method+" "+truncate(req.URL.Path, 200)
	case http.StatusMethodNotAllowed:
		code, msg = codeMethodNotAllowed, "method "+truncate(req.Method, 20)+" is not allowed on "+truncate(req.URL.Path, 200)
	default:
		return 0, errorBody{}, false
	}
	return he.Code, errorBody{errorDetail{Code: code, Message: msg}}, true
}

// truncate shortens client input to at most n bytes for messages, never
// splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
