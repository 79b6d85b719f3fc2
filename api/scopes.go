package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/vault"
)

// Token scopes (vault.TokenScope) are enforced here and nowhere else:
// routeScopes names, for each authenticated route, the scopes that may
// call it, and checkScope, which runs after authenticate on every /v1
// route, refuses every other with 403 forbidden. A route missing from the
// table is refused to every scope (TestScopeTableCoversEveryRoute keeps
// the table complete).
var (
	full     = []vault.TokenScope{vault.TokenFull}
	anyRead  = []vault.TokenScope{vault.TokenFull, vault.TokenRead}
	taskRead = []vault.TokenScope{vault.TokenFull, vault.TokenRead, vault.TokenTasks}
	taskDo   = []vault.TokenScope{vault.TokenFull, vault.TokenTasks}
	// taskCred: a running task's credential (task_api.go), and nothing else.
	taskCred = []vault.TokenScope{vault.TokenTask}
)

// routeScopes maps "METHOD /path" (echo's route path) to the scopes that
// may call it. read: every GET (metadata: never a value). tasks: start,
// read and stop tasks, and read profiles; no secret read, no write but
// tasks'. task (a running task's credential): the /v1/task routes only.
var routeScopes = map[string][]vault.TokenScope{
	"POST /v1/secrets":                      full,
	"POST /v1/secrets/import":               full,
	"GET /v1/secrets":                       anyRead,
	"GET /v1/secrets/:id":                   anyRead,
	"PATCH /v1/secrets/:id":                 full,
	"DELETE /v1/secrets/:id":                full,
	"GET /v1/secrets/:id/versions":          anyRead,
	"POST /v1/secrets/:id/rollback":         full,
	"POST /v1/secrets/:id/oauth2/authorize": full,
	"POST /v1/profiles":                     full,
	"GET /v1/profiles":                      taskRead,
	"GET /v1/profiles/:id":                  taskRead,
	"PATCH /v1/profiles/:id":                full,
	"DELETE /v1/profiles/:id":               full,
	"GET /v1/profiles/:id/env":              taskRead,
	"GET /v1/profiles/:id/secret-keys":      taskRead,
	"GET /v1/secret-requests":               anyRead,
	"GET /v1/secret-requests/:id":           anyRead,
	"POST /v1/secret-requests/:id/answer":   full,
	"POST /v1/secret-requests/:id/cancel":   full,
	"POST /v1/tasks":                        taskDo,
	"GET /v1/tasks":                         taskRead,
	"GET /v1/tasks/:id":                     taskRead,
	"GET /v1/tasks/:id/logs":                taskRead,
	"POST /v1/tasks/:id/stop":               taskDo,
	"POST /v1/tasks/:id/restart":            taskDo,
	"GET /v1/audit":                         anyRead,
	"GET /v1/tokens":                        anyRead,
	"POST /v1/tokens":                       full,
	"DELETE /v1/tokens/:id":                 full,
	"GET /v1/task/secret-keys":              taskCred,
	"GET /v1/task/secret-requests":          taskCred,
	"POST /v1/task/secret-requests":         taskCred,
	"GET /v1/task/secret-requests/:id":      taskCred,
}

type scopeKey struct{}

// Scope returns the scope of the token a request authenticated with, or
// "".
func Scope(ctx context.Context) vault.TokenScope {
	s, _ := ctx.Value(scopeKey{}).(vault.TokenScope)
	return s
}

// checkScope lets a request through only if its token's scope may call
// its route (routeScopes); otherwise it answers 403 forbidden, naming the
// scope it has and the scopes the route needs.
func (s *Server) checkScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		method := c.Request().Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		route := method + " " + c.Path()
		allowed := routeScopes[route]
		scope := Scope(c.Request().Context())
		if slices.Contains(allowed, scope) {
			return next(c)
		}
		metrics.AuthFailure(c.Request().Context(), metrics.ReasonScope)
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		need := "a scope this server does not give"
		if len(names) > 0 {
			need = "scope " + strings.Join(names, " or ")
		}
		return &vault.Error{Code: vault.EFORBIDDEN, Message: fmt.Sprintf(
			"this token has scope %s, which does not allow %s: it needs %s", scope, route, need)}
	}
}
