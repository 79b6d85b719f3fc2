package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

func (s *Server) tokenRoutes(g authed) {
	g.GET("/tokens", s.listTokens)
	g.POST("/tokens", s.createToken)
	g.DELETE("/tokens/:id", s.revokeToken)
}

// tokenJSON is a token as lists show it: never its secret.
type tokenJSON struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Scope      string  `json:"scope"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	ExpiresAt  *string `json:"expires_at"`
}

// createdTokenJSON answers a create: the token and, this once, the whole
// token to authenticate with.
type createdTokenJSON struct {
	tokenJSON
	Token string `json:"token"`
}

// timeOrNull is timestamp(t), or nil for the zero time.
func timeOrNull(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := timestamp(t)
	return &s
}

func newTokenJSON(t *vault.Token) tokenJSON {
	return tokenJSON{
		ID: t.ID, Name: t.Name, Scope: string(t.Scope), CreatedAt: timestamp(t.CreatedAt),
		LastUsedAt: timeOrNull(t.LastUsedAt), ExpiresAt: timeOrNull(t.ExpiresAt),
	}
}

type createTokenRequest struct {
	Name      string           `json:"name"`
	Scope     string           `json:"scope"`
	ExpiresAt Nullable[string] `json:"expires_at"`
}

// listTokens answers every token of the caller, oldest first: at most
// vault.MaxTokensPerUser, so one page.
func (s *Server) listTokens(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := s.svc.Tokens(ctx, UserID(ctx))
	if err != nil {
		return err
	}
	out := make([]tokenJSON, len(list))
	for i, t := range list {
		out[i] = newTokenJSON(t)
	}
	return writeJSON(c, http.StatusOK, newListJSON(out, ""))
}

func (s *Server) createToken(c echo.Context) error {
	var req createTokenRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	spec := vault.TokenSpec{Name: req.Name, Scope: vault.TokenScope(req.Scope)}
	if req.ExpiresAt.Set && !req.ExpiresAt.Null {
		t, err := time.Parse(time.RFC3339Nano, req.ExpiresAt.Value)
		if err != nil {
			return vault.Invalid("expires_at", "must be an RFC 3339 time, such as 2031-07-09T10:11:12Z, or null")
		}
		spec.ExpiresAt = t
	}
	ctx := c.Request().Context()
	t, token, err := s.svc.IssueToken(ctx, UserID(ctx), spec)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tokens/"+t.ID)
	return writeJSON(c, http.StatusCreated, createdTokenJSON{tokenJSON: newTokenJSON(t), Token: token})
}

// revokeToken deletes one of the caller's tokens; the last full one only
// with ?confirm=last-full-token (vault.RevokeToken).
func (s *Server) revokeToken(c echo.Context) error {
	q := c.QueryParams()
	if len(q["confirm"]) > 1 {
		return vault.Invalid("confirm", "must be given at most once")
	}
	confirm := q.Get("confirm")
	if confirm != "" && confirm != vault.ConfirmLastFullToken {
		return vault.Invalid("confirm", "must be %s", vault.ConfirmLastFullToken)
	}
	ctx := c.Request().Context()
	if err := s.svc.RevokeToken(ctx, UserID(ctx), c.Param("id"), confirm); err != nil {
		return notFound(err, "token")
	}
	return c.NoContent(http.StatusNoContent)
}
