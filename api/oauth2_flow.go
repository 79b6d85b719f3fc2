package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// oauth2AuthorizationJSON is a started authorization (issue 17): the URL
// to open in a browser signed in to the dashboard as the same user, the
// redirect URL the provider's app must list, and when the link expires.
type oauth2AuthorizationJSON struct {
	AuthorizationURL string    `json:"authorization_url"`
	RedirectURL      string    `json:"redirect_url"`
	ExpiresAt        time.Time `json:"expires_at"`
}

func (s *Server) oauth2FlowRoutes(g authed) {
	g.POST("/secrets/:id/oauth2/authorize", s.authorizeOAuth2)
}

// authorizeOAuth2 starts the Authorization Code flow (PKCE, state) of an
// oauth2 secret of flow authorization_code, bound to the user. The
// provider redirects to the dashboard's callback, which completes it in a
// browser signed in as the same user.
func (s *Server) authorizeOAuth2(c echo.Context) error {
	ctx := c.Request().Context()
	redirect := s.oauth2CallbackURL(c)
	a, err := s.svc.StartOAuth2Authorization(ctx, UserID(ctx), c.Param("id"), "", redirect)
	if err != nil {
		return notFound(err, "secret")
	}
	return writeJSON(c, http.StatusOK, oauth2AuthorizationJSON{AuthorizationURL: a.URL, RedirectURL: redirect, ExpiresAt: a.ExpiresAt})
}

// oauth2CallbackURL is the dashboard's redirect URL: from Config.PublicURL,
// else from the request's scheme and host.
func (s *Server) oauth2CallbackURL(c echo.Context) string {
	if s.publicURL != "" {
		return vault.OAuth2CallbackURL(s.publicURL)
	}
	return vault.OAuth2CallbackURL(c.Scheme() + "://" + c.Request().Host)
}
