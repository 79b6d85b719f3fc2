package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// Secret requests (vault/secret_request.go, orchestrator/awaiting.go): the
// names a task waits for. Reading them needs the vault only; an answer or
// a cancel ends waiting tasks, so it needs the orchestrator (503 without).
func (s *Server) secretRequestRoutes(g authed) {
	g.GET("/secret-requests", s.listSecretRequests)
	g.GET("/secret-requests/:id", s.getSecretRequest)
	g.POST("/secret-requests/:id/answer", s.answerSecretRequest)
	g.POST("/secret-requests/:id/cancel", s.cancelSecretRequest)
}

// secretRequestJSON is a request as responses show it; never a value.
type secretRequestJSON struct {
	ID         string               `json:"id"`
	ProfileID  string               `json:"profile_id"`
	Names      []requiredSecretJSON `json:"names"`
	TaskIDs    []string             `json:"task_ids"`
	Asks       []taskAskJSON        `json:"asks"`
	Status     string               `json:"status"`
	CreatedAt  string               `json:"created_at"`
	ExpiresAt  string               `json:"expires_at"`
	AnsweredAt *string              `json:"answered_at"`
}

func newSecretRequestJSON(r *vault.SecretRequest) secretRequestJSON {
	out := secretRequestJSON{
		ID: r.ID, ProfileID: r.ProfileID, Names: newRequiredSecretsJSON(r.Names), TaskIDs: nonNil(r.TaskIDs),
		Asks:   newTaskAsksJSON(r.Asks, func(vault.TaskAsk) bool { return true }),
		Status: string(r.Status), CreatedAt: timestamp(r.CreatedAt), ExpiresAt: timestamp(r.ExpiresAt),
		AnsweredAt: optTimestamp(r.AnsweredAt),
	}
	return out
}

type secretRequestListJSON struct {
	Data []secretRequestJSON `json:"data"`
}

// answerSecretRequestRequest: values is write-only; scope "" means all.
type answerSecretRequestRequest struct {
	Values map[string]string `json:"values"`
	Scope  string            `json:"scope"`
}

func (s *Server) listSecretRequests(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := s.svc.SecretRequests(ctx, UserID(ctx))
	if err != nil {
		return err
	}
	out := secretRequestListJSON{Data: make([]secretRequestJSON, len(list))}
	for i, r := range list {
		out.Data[i] = newSecretRequestJSON(r)
	}
	return writeJSON(c, http.StatusOK, out)
}

func (s *Server) getSecretRequest(c echo.Context) error {
	ctx := c.Request().Context()
	r, err := s.svc.SecretRequest(ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "secret request")
	}
	return writeJSON(c, http.StatusOK, newSecretRequestJSON(r))
}

func (s *Server) answerSecretRequest(c echo.Context) error {
	var req answerSecretRequestRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	scope := vault.Scope(req.Scope)
	if scope == "" {
		scope = vault.ScopeAll
	}
	ctx := c.Request().Context()
	r, err := s.svc.AnswerSecretRequest(ctx, UserID(ctx), c.Param("id"), req.Values, scope)
	var lines *vault.ImportError
	if errors.As(err, &lines) {
		// The values are written as an import is: its errors name lines,
		// here the names of values (the message names each).
		return &vault.Error{Code: vault.ErrorCode(err), Field: "values", Message: "values: " + lines.Error()}
	}
	if err != nil {
		return notFound(err, "secret request")
	}
	o.ReleaseAnswered(ctx, r)
	return writeJSON(c, http.StatusOK, newSecretRequestJSON(r))
}

func (s *Server) cancelSecretRequest(c echo.Context) error {
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := s.svc.CancelSecretRequest(ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "secret request")
	}
	o.CancelWaiting(ctx, r)
	return writeJSON(c, http.StatusOK, newSecretRequestJSON(r))
}
