package client

import (
	"context"
	"net/http"
)

// AuthorizeOAuth2Secret is POST /v1/secrets/{id}/oauth2/authorize: it
// starts connecting an oauth2 secret of flow authorization_code and answers
// the provider's authorization URL, to open in a browser signed in to the
// dashboard as the same user (the link works once, for 10 minutes).
func (c *Client) AuthorizeOAuth2Secret(ctx context.Context, id string) (*OAuth2Authorization, error) {
	r, err := c.gen.AuthorizeOAuth2SecretWithResponse(ctx, id)
	if err != nil {
		return nil, c.transport(err)
	}
	return result(c, r.HTTPResponse, r.Body, http.StatusOK, r.JSON200)
}
