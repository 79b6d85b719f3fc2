package client

import (
	"context"
	"net/http"
)

// ListSecretRequests is GET /v1/secret-requests: the user's secret
// requests, the pending ones first; never a value.
func (c *Client) ListSecretRequests(ctx context.Context) ([]SecretRequest, error) {
	r, err := c.gen.ListSecretRequestsWithResponse(ctx)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}

// GetSecretRequest is GET /v1/secret-requests/{id}.
func (c *Client) GetSecretRequest(ctx context.Context, id string) (*SecretRequest, error) {
	r, err := c.gen.GetSecretRequestWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// AnswerSecretRequest is POST /v1/secret-requests/{id}/answer: values are
// written as secrets of scope ("all" or "agents"); write-only.
func (c *Client) AnswerSecretRequest(ctx context.Context, id string, body AnswerSecretRequest) (*SecretRequest, error) {
	r, err := c.gen.AnswerSecretRequestWithResponse(ctx, id, body)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}

// CancelSecretRequest is POST /v1/secret-requests/{id}/cancel: its
// waiting tasks end cancelled.
func (c *Client) CancelSecretRequest(ctx context.Context, id string) (*SecretRequest, error) {
	r, err := c.gen.CancelSecretRequestWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}
