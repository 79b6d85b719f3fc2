package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	logmask "github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/vault"
)

func (s *Server) secretRoutes(g authed) {
	g.POST("/secrets", s.createSecret)
	g.POST("/secrets/import", s.importSecrets) // import.go
	g.GET("/secrets", s.listSecrets)
	g.GET("/secrets/:id", s.getSecret)
	g.PATCH("/secrets/:id", s.updateSecret)
	g.DELETE("/secrets/:id", s.deleteSecret)
}

// secretJSON is a secret as every response shows it: never its value.
type secretJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Scope       string   `json:"scope"`
	ProfileIDs  []string `json:"profile_ids"`
	Description string   `json:"description"`
	Version     int      `json:"version"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
	// Kind is value or oauth2; OAuth2 is an oauth2 secret's settings and
	// status (oauth2_secret.go), left out for a value secret.
	Kind   string      `json:"kind"`
	OAuth2 *oauth2JSON `json:"oauth2,omitempty"`
}

// savedSecretJSON answers a create or update: the secret and what the
// client should know about the value it saved.
type savedSecretJSON struct {
	secretJSON
	Warnings []string `json:"warnings"`
}

func newSecretJSON(sec *vault.Secret) secretJSON {
	ids := sec.ProfileIDs
	if ids == nil {
		ids = []string{}
	}
	return secretJSON{
		ID: sec.ID, Name: sec.Name, Scope: string(sec.Scope), ProfileIDs: ids,
		Description: sec.Description, Version: sec.Version,
		CreatedAt: timestamp(sec.CreatedAt), UpdatedAt: timestamp(sec.UpdatedAt),
		Kind: string(sec.Kind.OrValue()), OAuth2: newOAuth2JSON(sec),
	}
}

// timestamp formats t as RFC 3339 in UTC.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// shortValueWarning is the warning for a saved value too short to mask.
var shortValueWarning = fmt.Sprintf("value: shorter than %d characters, so it cannot be masked in task logs", logmask.MinLen)

// valueWarnings returns the warnings about a value just saved (nil when
// none was).
func valueWarnings(value *string) []string {
	w := []string{}
	if value != nil && len(*value) < logmask.MinLen {
		w = append(w, shortValueWarning)
	}
	return w
}

type createSecretRequest struct {
	Name        string   `json:"name"`
	Value       string   `json:"value"`
	Scope       *string  `json:"scope"`
	ProfileIDs  []string `json:"profile_ids"`
	Description string   `json:"description"`
	// An oauth2 secret (oauth2_secret.go): kind oauth2, its settings and
	// its client secret instead of a value.
	Kind         *string             `json:"kind"`
	OAuth2       *oauth2SettingsJSON `json:"oauth2"`
	ClientSecret *string             `json:"client_secret"`
}

// updateSecretRequest is a PATCH: an omitted field is left as it is. name,
// value and scope cannot be null; description null clears it (as "");
// profile_ids null or [] clears the grants.
type updateSecretRequest struct {
	Name        *string            `json:"name"`
	Value       *string            `json:"value"`
	Scope       *string            `json:"scope"`
	ProfileIDs  Nullable[[]string] `json:"profile_ids"`
	Description Nullable[string]   `json:"description"`
	// An oauth2 secret's settings (replaced whole) and client secret.
	OAuth2       *oauth2SettingsJSON `json:"oauth2"`
	ClientSecret *string             `json:"client_secret"`
}

func (s *Server) createSecret(c echo.Context) error {
	var req createSecretRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	in, err := req.secretInput()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sec, err := s.svc.CreateSecret(ctx, UserID(ctx), in)
	if err != nil {
		return err
	}
	warned := &req.Value // a client secret is never in a task's logs
	if in.Kind == vault.KindOAuth2 {
		warned = nil
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/secrets/"+sec.ID)
	return writeJSON(c, http.StatusCreated, savedSecretJSON{newSecretJSON(sec), valueWarnings(warned)})
}

func (s *Server) listSecrets(c echo.Context) error {
	opts, err := listOptions(c)
	if err != nil {
		return err
	}
	return listPage(c, opts, s.svc.Secrets, newSecretJSON)
}

func (s *Server) getSecret(c echo.Context) error {
	ctx := c.Request().Context()
	sec, err := s.svc.Secret(ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "secret")
	}
	return writeJSON(c, http.StatusOK, newSecretJSON(sec))
}

func (s *Server) updateSecret(c echo.Context) error {
	var req updateSecretRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	p := vault.SecretPatch{Name: req.Name, Value: req.Value, OAuth2: req.OAuth2.settings(), ClientSecret: req.ClientSecret}
	if req.Scope != nil {
		scope := vault.Scope(*req.Scope)
		p.Scope = &scope
	}
	if req.ProfileIDs.Set {
		p.SetProfileIDs = true
		p.ProfileIDs = req.ProfileIDs.Value // nil for null
	}
	if req.Description.Set {
		d := req.Description.Value // "" for null
		p.Description = &d
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	var sec *vault.Secret
	var err error
	if isEmptySecretPatch(p) {
		// Nothing to change: answer the secret as it is rather than
		// write it and move updated_at.
		sec, err = s.svc.Secret(ctx, UserID(ctx), id)
	} else {
		sec, err = s.svc.UpdateSecret(ctx, UserID(ctx), id, p)
	}
	if err != nil {
		return notFound(err, "secret")
	}
	return writeJSON(c, http.StatusOK, savedSecretJSON{newSecretJSON(sec), valueWarnings(req.Value)})
}

func isEmptySecretPatch(p vault.SecretPatch) bool {
	return p.Name == nil && p.Value == nil && p.Scope == nil && !p.SetProfileIDs && p.Description == nil &&
		p.OAuth2 == nil && p.ClientSecret == nil
}

func (s *Server) deleteSecret(c echo.Context) error {
	ctx := c.Request().Context()
	if err := s.svc.DeleteSecret(ctx, UserID(ctx), c.Param("id")); err != nil {
		return notFound(err, "secret")
	}
	return c.NoContent(http.StatusNoContent)
}

// notFound gives every ENOTFOUND about an object of a kind one message,
// so another user's id and an id that never existed answer alike.
func notFound(err error, kind string) error {
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		return &vault.Error{Code: vault.ENOTFOUND, Message: kind + " not found"}
	}
	return err
}
