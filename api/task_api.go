package api

import (
	"context"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// The task API (issue 13 item 3): the routes a running task's agent calls
// with its task credential (ENVVAULT_TASK_TOKEN, orchestrator/
// task_credential.go), and the only ones that credential may call (scope
// task, api/scopes.go). None gives a value: the task's profile's secret
// keys, and the secret requests the task asks.
func (s *Server) taskAPIRoutes(g authed) {
	g.GET("/task/secret-keys", s.taskSecretKeys)
	g.GET("/task/secret-requests", s.listTaskSecretRequests)
	g.POST("/task/secret-requests", s.askSecrets)
	g.GET("/task/secret-requests/:id", s.getTaskSecretRequest)
}

type taskKey struct{}

// taskOf returns the task a request's task credential names (authenticated
// and live), or nil for any other credential.
func taskOf(ctx context.Context) *orchestrator.Task {
	t, _ := ctx.Value(taskKey{}).(*orchestrator.Task)
	return t
}

// authenticateTask is authenticate for a task credential: the credential
// must be signed by this vault, unexpired, and its attempt the task's
// current one, starting or running (vault.AuthenticateTaskCredential with
// the orchestrator's LiveTask). The request then acts for the task's user
// with scope task; the audit trail's actor names the credential
// (TaskCredential.ID: "ttk_<task id>.<attempt>"). 503 without an
// orchestrator.
func (s *Server) authenticateTask(c echo.Context, next echo.HandlerFunc, token string) error {
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	req := c.Request()
	var task *orchestrator.Task
	cred, err := s.svc.AuthenticateTaskCredential(req.Context(), token, func(ctx context.Context, tc vault.TaskCredential) error {
		t, err := o.LiveTask(ctx, tc)
		task = t
		return err
	})
	if err != nil {
		countRefusal(req.Context(), err)
		return err
	}
	ctx := context.WithValue(req.Context(), ctxUserID, cred.UserID)
	ctx = context.WithValue(ctx, ctxTokenID, cred.ID())
	ctx = context.WithValue(ctx, scopeKey{}, vault.TokenTask)
	ctx = context.WithValue(ctx, taskKey{}, task)
	ctx = withUser(ctx, cred.UserID, cred.ID())
	c.SetRequest(req.WithContext(ctx))
	return next(c)
}

// taskAskJSON is one running task's ask on a secret request; never a
// value.
type taskAskJSON struct {
	TaskID  string   `json:"task_id"`
	Attempt int      `json:"attempt"`
	Names   []string `json:"names"`
	Message string   `json:"message"`
	AskedAt string   `json:"asked_at"`
}

// newTaskAsksJSON converts the asks of r that keep says to keep.
func newTaskAsksJSON(asks []vault.TaskAsk, keep func(vault.TaskAsk) bool) []taskAskJSON {
	out := []taskAskJSON{}
	for _, a := range asks {
		if keep(a) {
			out = append(out, taskAskJSON{TaskID: a.TaskID, Attempt: a.Attempt, Names: nonNil(a.Names), Message: a.Message, AskedAt: timestamp(a.AskedAt)})
		}
	}
	return out
}

// taskSecretRequestJSON is a secret request as the task that asked sees
// it: its status (cancelled: the user refused), the names it asks for and
// the task's own asks; not the other tasks on it.
type taskSecretRequestJSON struct {
	ID         string               `json:"id"`
	Status     string               `json:"status"`
	Names      []requiredSecretJSON `json:"names"`
	Asks       []taskAskJSON        `json:"asks"`
	CreatedAt  string               `json:"created_at"`
	ExpiresAt  string               `json:"expires_at"`
	AnsweredAt *string              `json:"answered_at"`
}

func newTaskSecretRequestJSON(r *vault.SecretRequest, taskID string) taskSecretRequestJSON {
	return taskSecretRequestJSON{
		ID: r.ID, Status: string(r.Status), Names: newRequiredSecretsJSON(r.Names),
		Asks:      newTaskAsksJSON(r.Asks, func(a vault.TaskAsk) bool { return a.TaskID == taskID }),
		CreatedAt: timestamp(r.CreatedAt), ExpiresAt: timestamp(r.ExpiresAt), AnsweredAt: optTimestamp(r.AnsweredAt),
	}
}

type taskSecretRequestListJSON struct {
	Data []taskSecretRequestJSON `json:"data"`
}

// askSecretsRequest is what an agent asks for: names with a description
// each, and a message for the user.
type askSecretsRequest struct {
	Names   []requiredSecretJSON `json:"names"`
	Message string               `json:"message"`
}

// taskSecretKeys answers GET /v1/profiles/:id/secret-keys for the task's
// profile.
func (s *Server) taskSecretKeys(c echo.Context) error {
	ctx := c.Request().Context()
	t := taskOf(ctx)
	keys, err := s.orch.SecretKeys(ctx, t.UserID, t.ProfileID)
	if err != nil {
		return notFound(err, "profile")
	}
	return writeSecretKeys(c, keys)
}

func (s *Server) askSecrets(c echo.Context) error {
	var req askSecretsRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	t := taskOf(ctx)
	r, err := s.orch.AskSecrets(ctx, t, requiredSecrets(req.Names), req.Message)
	if err != nil {
		return notFound(err, "profile")
	}
	return writeJSON(c, http.StatusOK, newTaskSecretRequestJSON(r, t.ID))
}

// listTaskSecretRequests answers the requests the task asked on (any
// attempt), pending first, then newest first.
func (s *Server) listTaskSecretRequests(c echo.Context) error {
	ctx := c.Request().Context()
	t := taskOf(ctx)
	list, err := s.svc.SecretRequests(ctx, t.UserID)
	if err != nil {
		return err
	}
	list = slices.DeleteFunc(list, func(r *vault.SecretRequest) bool { return !r.AskedBy(t.ID) })
	out := taskSecretRequestListJSON{Data: make([]taskSecretRequestJSON, len(list))}
	for i, r := range list {
		out.Data[i] = newTaskSecretRequestJSON(r, t.ID)
	}
	return writeJSON(c, http.StatusOK, out)
}

// getTaskSecretRequest answers a request the task asked on; any other is
// not found.
func (s *Server) getTaskSecretRequest(c echo.Context) error {
	ctx := c.Request().Context()
	t := taskOf(ctx)
	r, err := s.svc.SecretRequest(ctx, t.UserID, c.Param("id"))
	if err == nil && !r.AskedBy(t.ID) {
		err = vault.Errorf(vault.ENOTFOUND, "secret request not found")
	}
	if err != nil {
		return notFound(err, "secret request")
	}
	return writeJSON(c, http.StatusOK, newTaskSecretRequestJSON(r, t.ID))
}
