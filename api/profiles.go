package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

func (s *Server) profileRoutes(g authed) {
	g.POST("/profiles", s.createProfile)
	g.GET("/profiles", s.listProfiles)
	g.GET("/profiles/:id", s.getProfile)
	g.PATCH("/profiles/:id", s.updateProfile)
	g.DELETE("/profiles/:id", s.deleteProfile)
	g.GET("/profiles/:id/env", s.profileEnv)
	g.GET("/profiles/:id/secret-keys", s.profileSecretKeys)
}

// profileJSON is a profile as responses show it; lists and env are never
// null.
type profileJSON struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Image         string            `json:"image"`
	Command       []string          `json:"command"`
	SetupCommands []string          `json:"setup_commands"`
	Env           map[string]string `json:"env"`
	Sandbox       sandboxJSON       `json:"sandbox"`
	// RequiredSecrets is never null.
	RequiredSecrets []requiredSecretJSON `json:"required_secrets"`
	OnSecretChange  string               `json:"on_secret_change"`
	CreatedAt       string               `json:"created_at"`
	UpdatedAt       string               `json:"updated_at"`
}

func newProfileJSON(p *vault.Profile) profileJSON {
	out := profileJSON{
		ID: p.ID, Name: p.Name, Image: p.Image, Command: p.Command, SetupCommands: p.SetupCommands, Env: p.Env,
		Sandbox: newSandboxJSON(p.Sandbox), RequiredSecrets: newRequiredSecretsJSON(p.RequiredSecrets),
		OnSecretChange: p.OnSecretChange, CreatedAt: timestamp(p.CreatedAt), UpdatedAt: timestamp(p.UpdatedAt),
	}
	if out.Command == nil {
		out.Command = []string{}
	}
	if out.SetupCommands == nil {
		out.SetupCommands = []string{}
	}
	if out.Env == nil {
		out.Env = map[string]string{}
	}
	return out
}

type createProfileRequest struct {
	Name          string            `json:"name"`
	Image         string            `json:"image"`
	Command       []string          `json:"command"`
	SetupCommands []string          `json:"setup_commands"`
	Env           map[string]string `json:"env"`
	Sandbox       *sandboxJSON      `json:"sandbox"`
	// RequiredSecrets: {name, description} objects; unknown keys refused.
	RequiredSecrets []requiredSecretJSON `json:"required_secrets"`
	OnSecretChange  string               `json:"on_secret_change"`
}

// updateProfileRequest is a PATCH: an omitted field is left as it is. name
// and image cannot be null; command, setup_commands and env are cleared by
// null as by [] or {}. sandbox replaces the whole request; null or {} asks
// for the defaults.
type updateProfileRequest struct {
	Name          *string                     `json:"name"`
	Image         *string                     `json:"image"`
	Command       Nullable[[]string]          `json:"command"`
	SetupCommands Nullable[[]string]          `json:"setup_commands"`
	Env           Nullable[map[string]string] `json:"env"`
	Sandbox       Nullable[sandboxJSON]       `json:"sandbox"`
	// RequiredSecrets replaces the whole list; null clears it as [] does.
	RequiredSecrets Nullable[[]requiredSecretJSON] `json:"required_secrets"`
	OnSecretChange  *string                        `json:"on_secret_change"`
}

// envEntryJSON says which secret supplies a name to a profile.
type envEntryJSON struct {
	Name     string `json:"name"`
	SecretID string `json:"secret_id"`
	Scope    string `json:"scope"`
	Version  int    `json:"version"`
}

type profileEnvJSON struct {
	Data []envEntryJSON `json:"data"`
}

func (s *Server) createProfile(c echo.Context) error {
	var req createProfileRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := s.svc.CreateProfile(ctx, UserID(ctx), vault.ProfileInput{
		Name: req.Name, Image: req.Image, Command: req.Command, SetupCommands: req.SetupCommands, Env: req.Env,
		Sandbox: req.Sandbox.sandbox(), RequiredSecrets: requiredSecrets(req.RequiredSecrets),
		OnSecretChange: req.OnSecretChange,
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/profiles/"+p.ID)
	return writeJSON(c, http.StatusCreated, newProfileJSON(p))
}

func (s *Server) listProfiles(c echo.Context) error {
	opts, err := listOptions(c)
	if err != nil {
		return err
	}
	return listPage(c, opts, s.svc.Profiles, newProfileJSON)
}

func (s *Server) getProfile(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.svc.Profile(ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "profile")
	}
	return writeJSON(c, http.StatusOK, newProfileJSON(p))
}

func (s *Server) updateProfile(c echo.Context) error {
	var req updateProfileRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	pt := vault.ProfilePatch{Name: req.Name, Image: req.Image, OnSecretChange: req.OnSecretChange}
	if req.Command.Set {
		cmd := nonNil(req.Command.Value)
		pt.Command = &cmd
	}
	if req.SetupCommands.Set {
		cmds := nonNil(req.SetupCommands.Value)
		pt.SetupCommands = &cmds
	}
	if req.Env.Set {
		env := req.Env.Value
		if env == nil {
			env = map[string]string{}
		}
		pt.Env = &env
	}
	if req.Sandbox.Set {
		sb := req.Sandbox.Value.sandbox() // null: the zero value, the defaults
		pt.Sandbox = &sb
	}
	if req.RequiredSecrets.Set {
		list := requiredSecrets(req.RequiredSecrets.Value)
		pt.RequiredSecrets = &list
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	var p *vault.Profile
	var err error
	if pt == (vault.ProfilePatch{}) {
		// Nothing to change: answer the profile as it is rather than
		// write it and move updated_at.
		p, err = s.svc.Profile(ctx, UserID(ctx), id)
	} else {
		p, err = s.svc.UpdateProfile(ctx, UserID(ctx), id, pt)
	}
	if err != nil {
		return notFound(err, "profile")
	}
	return writeJSON(c, http.StatusOK, newProfileJSON(p))
}

func (s *Server) deleteProfile(c echo.Context) error {
	ctx := c.Request().Context()
	if err := s.svc.DeleteProfile(ctx, UserID(ctx), c.Param("id")); err != nil {
		return notFound(err, "profile")
	}
	return c.NoContent(http.StatusNoContent)
}

// profileEnv answers which secret supplies each name a task on the
// profile would receive from the vault; never a value.
func (s *Server) profileEnv(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := s.svc.ProfileSecrets(ctx, UserID(ctx), c.Param("id"))
	if err != nil {
		return notFound(err, "profile")
	}
	out := profileEnvJSON{Data: make([]envEntryJSON, len(list))}
	for i, e := range list {
		out.Data[i] = envEntryJSON{Name: e.Name, SecretID: e.SecretID, Scope: string(e.Scope), Version: e.Version}
	}
	return writeJSON(c, http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
