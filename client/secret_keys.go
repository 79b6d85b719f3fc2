package client

import (
	"context"
	"net/http"
)

// GetProfileSecretKeys is GET /v1/profiles/{id}/secret-keys: every name a
// task of the profile would receive or the profile requires, whether each
// has a value and where it comes from; never a value.
func (c *Client) GetProfileSecretKeys(ctx context.Context, id string) ([]SecretKey, error) {
	r, err := c.gen.GetProfileSecretKeysWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	l, err := result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
	if err != nil {
		return nil, err
	}
	return l.Data, nil
}
