package client

import (
	"context"
	"net/http"
)

// The task API: for an agent inside a running task, a Client made with
// the task's credential (ENVVAULT_TASK_TOKEN) and URL (ENVVAULT_URL). No
// operation gives a value.

// GetTaskSecretKeys is GET /v1/task/secret-keys: every name of the
// running task's profile, whether each has a value; never a value.
func (c *Client) GetTaskSecretKeys(ctx context.Context) ([]SecretKey, error) {
	r, err := c.gen.GetTaskSecretKeysWithResponse(ctx)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}

// AskSecrets is POST /v1/task/secret-requests: the running task asks its
// user for values of names, with a message; the answer restarts the task.
func (c *Client) AskSecrets(ctx context.Context, body AskSecrets) (*TaskSecretRequest, error) {
	r, err := c.gen.AskSecretsWithResponse(ctx, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// ListTaskSecretRequests is GET /v1/task/secret-requests: the requests the
// task asked on, in any attempt.
func (c *Client) ListTaskSecretRequests(ctx context.Context) ([]TaskSecretRequest, error) {
	r, err := c.gen.ListTaskSecretRequestsWithResponse(ctx)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}

// GetTaskSecretRequest is GET /v1/task/secret-requests/{id}: its status
// says whether the user answered (pending, answered, cancelled: refused,
// expired).
func (c *Client) GetTaskSecretRequest(ctx context.Context, id string) (*TaskSecretRequest, error) {
	r, err := c.gen.GetTaskSecretRequestWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}
