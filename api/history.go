package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// The history of a secret's value: the versions the vault keeps (never a
// value) and rollback to one of them (vault/history.go).
func (s *Server) historyRoutes(g authed) {
	g.GET("/secrets/:id/versions", s.listSecretVersions)
	g.POST("/secrets/:id/rollback", s.rollbackSecret)
}

// secretVersionJSON is one version of a secret's value: never the value.
// created_at and actor_token_id are null when not known.
type secretVersionJSON struct {
	Version      int     `json:"version"`
	CreatedAt    *string `json:"created_at"`
	ActorTokenID *string `json:"actor_token_id"`
	Current      bool    `json:"current"`
}

// secretVersionsJSON is the list of a secret's versions, current first. It
// is never paginated: it holds at most the kept versions and the current.
type secretVersionsJSON struct {
	Data []secretVersionJSON `json:"data"`
}

func newSecretVersionJSON(v vault.SecretVersion) secretVersionJSON {
	out := secretVersionJSON{Version: v.Version, Current: v.Current}
	if !v.CreatedAt.IsZero() {
		ts := timestamp(v.CreatedAt)
		out.CreatedAt = &ts
	}
	if v.ActorTokenID != "" {
		id := v.ActorTokenID
		out.ActorTokenID = &id
	}
	return out
}

// rollbackRequest names the version whose value becomes current again.
type rollbackRequest struct {
	Version *int `json:"version"`
}

func (s *Server) listSecretVersions(c echo.Context) error {
	ctx := c.Request().Context()
	versions, err := s.svc.SecretVersions(ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "secret")
	}
	out := secretVersionsJSON{Data: make([]secretVersionJSON, len(versions))}
	for i, v := range versions {
		out.Data[i] = newSecretVersionJSON(v)
	}
	return writeJSON(c, http.StatusOK, out)
}

func (s *Server) rollbackSecret(c echo.Context) error {
	var req rollbackRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	if req.Version == nil {
		return vault.Invalid("version", "is required: the number of a version this secret keeps")
	}
	ctx := c.Request().Context()
	sec, err := s.svc.RollbackSecret(ctx, UserID(ctx), c.Param("id"), *req.Version)
	if err != nil {
		return notFound(err, "secret")
	}
	return writeJSON(c, http.StatusOK, newSecretJSON(sec))
}
