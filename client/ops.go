package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// One method per operation of api/openapi.json, named by its operationId
// (TestEveryOperationHasAMethod). Each answers the documented success body
// or an *APIError; lists answer one Page (All walks them).

// Healthz is GET /healthz: nil when the process is up.
func (c *Client) Healthz(ctx context.Context) error {
	r, err := c.gen.HealthzWithResponse(ctx)
	if err != nil {
		return c.transport(err)
	}
	return c.noContent(r.HTTPResponse, r.Body, http.StatusOK)
}

// Readyz is GET /readyz: nil when the server can serve (its store answers).
func (c *Client) Readyz(ctx context.Context) error {
	r, err := c.gen.ReadyzWithResponse(ctx)
	if err != nil {
		return c.transport(err)
	}
	return c.noContent(r.HTTPResponse, r.Body, http.StatusOK)
}

// Openapi is GET /v1/openapi.json: the server's OpenAPI document.
func (c *Client) Openapi(ctx context.Context) ([]byte, error) {
	r, err := c.gen.OpenapiWithResponse(ctx)
	if err != nil {
		return nil, c.transport(err)
	}
	if err := c.noContent(r.HTTPResponse, r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.Body, nil
}

// ListSecrets is GET /v1/secrets: one page of the user's secrets.
func (c *Client) ListSecrets(ctx context.Context, params *ListSecretsParams) (Page[Secret], error) {
	r, err := c.gen.ListSecretsWithResponse(ctx, params)
	if err != nil {
		return Page[Secret]{}, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return Page[Secret]{}, err
	}
	return page(l.Data, l.NextCursor), nil
}

// CreateSecret is POST /v1/secrets.
func (c *Client) CreateSecret(ctx context.Context, body CreateSecret) (*SavedSecret, error) {
	r, err := c.gen.CreateSecretWithResponse(ctx, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusCreated, r.JSON201)
}

// GetSecret is GET /v1/secrets/{id}: the secret, never its value.
func (c *Client) GetSecret(ctx context.Context, id string) (*Secret, error) {
	r, err := c.gen.GetSecretWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// UpdateSecret is PATCH /v1/secrets/{id}: only the fields set change.
func (c *Client) UpdateSecret(ctx context.Context, id string, body UpdateSecret) (*SavedSecret, error) {
	r, err := c.gen.UpdateSecretWithResponse(ctx, id, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// DeleteSecret is DELETE /v1/secrets/{id}.
func (c *Client) DeleteSecret(ctx context.Context, id string) error {
	r, err := c.gen.DeleteSecretWithResponse(ctx, id)
	if err != nil {
		return c.transport(err)
	}
	return c.noContent(r.HTTPResponse, r.Body, http.StatusNoContent)
}

// ListSecretVersions is GET /v1/secrets/{id}/versions, current first.
func (c *Client) ListSecretVersions(ctx context.Context, id string) ([]SecretVersion, error) {
	r, err := c.gen.ListSecretVersionsWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}

// RollbackSecret is POST /v1/secrets/{id}/rollback: the value of version
// becomes the current one, as a new version.
func (c *Client) RollbackSecret(ctx context.Context, id string, version int) (*Secret, error) {
	r, err := c.gen.RollbackSecretWithResponse(ctx, id, RollbackSecret{Version: version})
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// ListProfiles is GET /v1/profiles: one page of the user's profiles.
func (c *Client) ListProfiles(ctx context.Context, params *ListProfilesParams) (Page[Profile], error) {
	r, err := c.gen.ListProfilesWithResponse(ctx, params)
	if err != nil {
		return Page[Profile]{}, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return Page[Profile]{}, err
	}
	return page(l.Data, l.NextCursor), nil
}

// CreateProfile is POST /v1/profiles.
func (c *Client) CreateProfile(ctx context.Context, body CreateProfile) (*Profile, error) {
	r, err := c.gen.CreateProfileWithResponse(ctx, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusCreated, r.JSON201)
}

// GetProfile is GET /v1/profiles/{id}.
func (c *Client) GetProfile(ctx context.Context, id string) (*Profile, error) {
	r, err := c.gen.GetProfileWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// UpdateProfile is PATCH /v1/profiles/{id}: only the fields set change.
func (c *Client) UpdateProfile(ctx context.Context, id string, body UpdateProfile) (*Profile, error) {
	r, err := c.gen.UpdateProfileWithResponse(ctx, id, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// DeleteProfile is DELETE /v1/profiles/{id}.
func (c *Client) DeleteProfile(ctx context.Context, id string) error {
	r, err := c.gen.DeleteProfileWithResponse(ctx, id)
	if err != nil {
		return c.transport(err)
	}
	return c.noContent(r.HTTPResponse, r.Body, http.StatusNoContent)
}

// GetProfileEnv is GET /v1/profiles/{id}/env: the names a task of the
// profile would get from the vault and which secret gives each; no value.
func (c *Client) GetProfileEnv(ctx context.Context, id string) ([]EnvEntry, error) {
	r, err := c.gen.GetProfileEnvWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}

// ListTasks is GET /v1/tasks: one page of the user's tasks, newest first.
func (c *Client) ListTasks(ctx context.Context, params *ListTasksParams) (Page[Task], error) {
	r, err := c.gen.ListTasksWithResponse(ctx, params)
	if err != nil {
		return Page[Task]{}, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return Page[Task]{}, err
	}
	return page(l.Data, l.NextCursor), nil
}

// CreateTask is POST /v1/tasks: queues a task of a profile.
func (c *Client) CreateTask(ctx context.Context, body CreateTask) (*Task, error) {
	r, err := c.gen.CreateTaskWithResponse(ctx, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusAccepted, r.JSON202)
}

// GetTask is GET /v1/tasks/{id}.
func (c *Client) GetTask(ctx context.Context, id string) (*Task, error) {
	r, err := c.gen.GetTaskWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// StopTask is POST /v1/tasks/{id}/stop.
func (c *Client) StopTask(ctx context.Context, id string) (*Task, error) {
	r, err := c.gen.StopTaskWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusAccepted, r.JSON202)
}

// RestartTask is POST /v1/tasks/{id}/restart.
func (c *Client) RestartTask(ctx context.Context, id string) (*Task, error) {
	r, err := c.gen.RestartTaskWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusAccepted, r.JSON202)
}

// GetTaskLogs is GET /v1/tasks/{id}/logs: it copies the task's (masked)
// logs to w as they come; with follow, until the task is finished.
func (c *Client) GetTaskLogs(ctx context.Context, id string, follow bool, w io.Writer) error {
	resp, err := c.raw.GetTaskLogs(ctx, id, &GetTaskLogsParams{Follow: &follow})
	if err != nil {
		return c.transport(err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return c.transport(err)
		}
		return apiError(resp, body)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("logs of task %s: %w", id, err)
	}
	return nil
}

// ListAuditEvents is GET /v1/audit: one page of the user's audit events.
func (c *Client) ListAuditEvents(ctx context.Context, params *ListAuditEventsParams) (Page[AuditEvent], error) {
	r, err := c.gen.ListAuditEventsWithResponse(ctx, params)
	if err != nil {
		return Page[AuditEvent]{}, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return Page[AuditEvent]{}, err
	}
	return page(l.Data, l.NextCursor), nil
}

// ImportSecrets is POST /v1/secrets/import: the NAME=value lines of a
// dotenv file's content into the user's secrets, all or nothing. A refusal
// for its lines is an *APIError whose Lines name each bad line.
func (c *Client) ImportSecrets(ctx context.Context, body ImportSecrets) (*ImportResult, error) {
	r, err := c.gen.ImportSecretsWithResponse(ctx, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// ListTokens is GET /v1/tokens: the user's tokens, never their secrets.
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	r, err := c.gen.ListTokensWithResponse(ctx)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}

// CreateToken is POST /v1/tokens: the new token with its secret, which
// only this answer holds.
func (c *Client) CreateToken(ctx context.Context, body CreateToken) (*CreatedToken, error) {
	r, err := c.gen.CreateTokenWithResponse(ctx, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusCreated, r.JSON201)
}

// RevokeToken is DELETE /v1/tokens/{id}; confirmLast must be true to
// revoke the user's last unexpired full token.
func (c *Client) RevokeToken(ctx context.Context, id string, confirmLast bool) error {
	var params RevokeTokenParams
	if confirmLast {
		confirm := RevokeTokenParamsConfirm("last-full-token")
		params.Confirm = &confirm
	}
	r, err := c.gen.RevokeTokenWithResponse(ctx, id, &params)
	if err != nil {
		return c.transport(err)
	}
	return c.noContent(r.HTTPResponse, r.Body, http.StatusNoContent)
}
