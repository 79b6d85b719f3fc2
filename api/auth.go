package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/vault"
)

// UserID returns the id of the user a request authenticated as, or "".
func UserID(ctx context.Context) string { s, _ := ctx.Value(ctxUserID).(string); return s }

// TokenID returns the id of the API token a request authenticated with,
// or "".
func TokenID(ctx context.Context) string { s, _ := ctx.Value(ctxTokenID).(string); return s }

var errNoToken = &vault.Error{Code: vault.EUNAUTHORIZED, Message: "missing or invalid API token"}

// authenticate lets a request through only with one header
// "Authorization: Bearer <token>" naming a valid token, and puts the user
// id, token id and scope in its context. Otherwise it answers 401, with
// one message for every cause.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		token, ok := bearerToken(req.Header)
		if !ok {
			metrics.AuthFailure(req.Context(), metrics.ReasonMissing)
			return errNoToken
		}
		if strings.HasPrefix(token, vault.PrefixTaskCredential) {
			return s.authenticateTask(c, next, token) // task_api.go
		}
		cred, err := s.svc.AuthenticateToken(req.Context(), token)
		if err != nil {
			countRefusal(req.Context(), err)
			return err // EUNAUTHORIZED is 401, ELIMIT 429; anything else is logged and 500
		}
		ctx := context.WithValue(req.Context(), ctxUserID, cred.UserID)
		ctx = context.WithValue(ctx, ctxTokenID, cred.TokenID)
		ctx = context.WithValue(ctx, scopeKey{}, cred.Scope)
		ctx = withUser(ctx, cred.UserID, cred.TokenID)
		c.SetRequest(req.WithContext(ctx))
		return next(c)
	}
}

// countRefusal counts, for the metrics, why a credential was refused: the
// vault's reason of an EUNAUTHORIZED (its names are the metrics'), or the
// limiter of an ELIMIT.
func countRefusal(ctx context.Context, err error) {
	if reason := vault.AuthFailureReason(err); reason != "" {
		metrics.AuthFailure(ctx, reason)
	}
	var le *vault.LimitError
	if errors.As(err, &le) {
		metrics.RateLimited(ctx, le.Limit)
	}
}

// bearerToken returns the token of the only Authorization header, if it
// has the Bearer scheme (matched without regard to case, RFC 9110 11.1).
func bearerToken(h http.Header) (string, bool) {
	vals := h.Values(echo.HeaderAuthorization)
	if len(vals) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
