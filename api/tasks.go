package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// The task routes are always registered, so that the API a client sees
// does not depend on how the server was started; without an orchestrator
// (Config.Orchestrator nil) each answers 503 unavailable, after the
// checks that need none (auth, then the body of POST /v1/tasks).
func (s *Server) taskRoutes(g authed) {
	g.POST("/tasks", s.createTask)
	g.GET("/tasks", s.listTasks)
	g.GET("/tasks/:id", s.getTask)
	g.GET("/tasks/:id/logs", s.taskLogs)
	g.POST("/tasks/:id/stop", s.stopTask)
	g.POST("/tasks/:id/restart", s.restartTask)
}

var errNoOrchestrator = &apiError{
	Status: http.StatusServiceUnavailable, Code: codeUnavailable,
	Message: "tasks are not enabled on this server",
}

// requireOrchestrator returns the orchestrator, or the 503 error if there
// is none.
func (s *Server) requireOrchestrator() (*orchestrator.Orchestrator, error) {
	if s.orch == nil {
		return nil, errNoOrchestrator
	}
	return s.orch, nil
}

// taskJSON is a task as every response shows it. Nullable fields are null
// until they are known; env_sources never holds a value.
type taskJSON struct {
	ID               string           `json:"id"`
	ProfileID        string           `json:"profile_id"`
	Prompt           string           `json:"prompt"`
	Status           string           `json:"status"`
	ExitCode         *int             `json:"exit_code"`
	ContainerID      *string          `json:"container_id"`
	Attempt          int              `json:"attempt"`
	Error            *string          `json:"error"`
	StopRequested    bool             `json:"stop_requested"`
	RestartRequested bool             `json:"restart_requested"`
	EnvSources       []envSourceJSON  `json:"env_sources"`
	Sandbox          *taskSandboxJSON `json:"sandbox"`
	Stale            *staleJSON       `json:"stale"`
	MissingSecrets   *missingJSON     `json:"missing_secrets"`
	CreatedAt        string           `json:"created_at"`
	UpdatedAt        string           `json:"updated_at"`
	StartedAt        *string          `json:"started_at"`
	FinishedAt       *string          `json:"finished_at"`
}

// envSourceJSON says where one injected name came from; secret_id, scope
// and version are given for source "secret" only.
type envSourceJSON struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	SecretID string `json:"secret_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Version  int    `json:"version,omitempty"`
}

// staleJSON names the injected secrets of a running task that changed
// since its container started.
type staleJSON struct {
	Names []string `json:"names"`
}

// missingJSON is what a task awaiting secrets waits for: the names of its
// profile's pending request, which answering request_id gives.
type missingJSON struct {
	RequestID string   `json:"request_id"`
	Names     []string `json:"names"`
}

func newTaskJSON(v *orchestrator.TaskView) taskJSON {
	t := v.Task
	out := taskJSON{
		ID: t.ID, ProfileID: t.ProfileID, Prompt: t.Prompt, Status: string(t.Status), ExitCode: t.ExitCode,
		Attempt: t.Attempt, StopRequested: t.StopRequested, RestartRequested: t.RestartRequested,
		EnvSources: make([]envSourceJSON, len(t.EnvSources)),
		CreatedAt:  timestamp(t.CreatedAt), UpdatedAt: timestamp(t.UpdatedAt),
		StartedAt: optTimestamp(t.StartedAt), FinishedAt: optTimestamp(t.FinishedAt),
		Sandbox: newTaskSandboxJSON(t.Sandbox),
	}
	if t.ContainerID != "" {
		out.ContainerID = &t.ContainerID
	}
	// The error says why it failed, what it waits for, or why it was
	// cancelled; a task run again keeps none (requeue clears it).
	if (t.Status == orchestrator.StatusFailed || t.Status == orchestrator.StatusAwaitingSecrets || t.Status == orchestrator.StatusCancelled) && t.Error != "" {
		out.Error = &t.Error
	}
	for i, s := range t.EnvSources {
		out.EnvSources[i] = envSourceJSON{Name: s.Name, Source: s.Source}
		if s.Source == orchestrator.SourceSecret {
			out.EnvSources[i].SecretID, out.EnvSources[i].Scope, out.EnvSources[i].Version = s.SecretID, s.Scope, s.Version
		}
	}
	if len(v.Stale) > 0 {
		out.Stale = &staleJSON{Names: v.Stale}
	}
	if r := v.Request; r != nil && t.Status == orchestrator.StatusAwaitingSecrets {
		out.MissingSecrets = &missingJSON{RequestID: r.ID, Names: vault.RequiredNames(r.Names)}
	}
	return out
}

func optTimestamp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}

type createTaskRequest struct {
	ProfileID string `json:"profile_id"`
	Prompt    string `json:"prompt"`
}

func (s *Server) createTask(c echo.Context) error {
	var req createTaskRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, err := o.CreateTask(ctx, UserID(ctx), req.ProfileID, req.Prompt)
	if err != nil {
		if vault.ErrorCode(err) == vault.ELIMIT {
			metrics.RateLimited(ctx, metrics.LimitQueuedTasks)
		}
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tasks/"+t.ID)
	return writeJSON(c, http.StatusAccepted, newTaskJSON(&orchestrator.TaskView{Task: t}))
}

func (s *Server) listTasks(c echo.Context) error {
	opts, err := listOptions(c)
	if err != nil {
		return err
	}
	if opts.Query != "" {
		return vault.Invalid("q", "tasks cannot be searched")
	}
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	return listPage(c, opts, o.Tasks, newTaskJSON)
}

func (s *Server) getTask(c echo.Context) error {
	return s.onTask(c, http.StatusOK, (*orchestrator.Orchestrator).Task)
}

func (s *Server) stopTask(c echo.Context) error {
	return s.onTask(c, http.StatusAccepted, (*orchestrator.Orchestrator).StopTask)
}

func (s *Server) restartTask(c echo.Context) error {
	return s.onTask(c, http.StatusAccepted, (*orchestrator.Orchestrator).RestartTask)
}

// onTask answers a request on the task of the path's id: what do returns,
// with status, or 404 if the task is not the user's.
func (s *Server) onTask(c echo.Context, status int,
	do func(o *orchestrator.Orchestrator, ctx context.Context, userID, id string) (*orchestrator.TaskView, error)) error {
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v, err := do(o, ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "task")
	}
	return writeJSON(c, status, newTaskJSON(v))
}

// taskLogs answers a task's stored, masked output as text/plain. With
// follow=true the response is streamed, flushed after every chunk, until
// the task is finished (or the client goes away).
func (s *Server) taskLogs(c echo.Context) error {
	q := c.QueryParams()
	if len(q["follow"]) > 1 {
		return vault.Invalid("follow", "must be given at most once")
	}
	follow := false
	if vals, ok := q["follow"]; ok {
		b, err := strconv.ParseBool(vals[0])
		if err != nil {
			return vault.Invalid("follow", "must be true or false")
		}
		follow = b
	}
	o, err := s.requireOrchestrator()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	uid, id := UserID(ctx), c.Param("id")
	// Found first, so that a missing task is a 404 rather than an empty
	// 200, and a follower gets its headers before the first chunk.
	if _, err := o.Task(ctx, uid, id); err != nil {
		return notFound(err, "task")
	}
	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	res.WriteHeader(http.StatusOK)
	if follow {
		res.Flush()
	}
	var writeErr error
	err = o.Logs(ctx, uid, id, follow, func(chunk []byte) error {
		if _, writeErr = res.Write(chunk); writeErr != nil {
			return writeErr
		}
		if follow {
			res.Flush()
		}
		return nil
	})
	if err != nil && (writeErr != nil || ctx.Err() != nil) {
		return nil // the client went away: nothing to answer, nothing wrong
	}
	return err
}
