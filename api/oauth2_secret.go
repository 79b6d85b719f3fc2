package api

import "github.com/envvault/envvault/vault"

// OAuth2 secrets in the API (vault/oauth2.go): the settings a client gives
// and reads back, and the status it reads. The client secret is
// write-only (client_secret in a create or PATCH); no response ever holds
// it or a token.

// oauth2SettingsJSON is an oauth2 secret's settings, in a request (all
// fields but flow, token_url and client_id may be omitted) and a response.
type oauth2SettingsJSON struct {
	Flow          string            `json:"flow"`
	TokenURL      string            `json:"token_url"`
	AuthURL       string            `json:"auth_url"`
	DeviceAuthURL string            `json:"device_auth_url"`
	ClientID      string            `json:"client_id"`
	Scopes        []string          `json:"scopes"`
	Audience      string            `json:"audience"`
	AuthParams    map[string]string `json:"auth_params"`
}

// oauth2StatusJSON says whether an oauth2 secret can give tasks a token:
// never a token.
type oauth2StatusJSON struct {
	State       string  `json:"state"`
	Reason      string  `json:"reason"`
	Refreshable bool    `json:"refreshable"`
	ExpiresAt   *string `json:"expires_at"`
	ConnectedAt *string `json:"connected_at"`
	RefreshedAt *string `json:"refreshed_at"`
}

// oauth2JSON is the `oauth2` object of an oauth2 secret in a response.
type oauth2JSON struct {
	oauth2SettingsJSON
	Status oauth2StatusJSON `json:"status"`
}

func (o *oauth2SettingsJSON) settings() *vault.OAuth2Settings {
	if o == nil {
		return nil
	}
	return &vault.OAuth2Settings{Flow: vault.OAuth2Flow(o.Flow), TokenURL: o.TokenURL, AuthURL: o.AuthURL,
		DeviceAuthURL: o.DeviceAuthURL, ClientID: o.ClientID, Scopes: o.Scopes, Audience: o.Audience, AuthParams: o.AuthParams}
}

// newOAuth2JSON is the oauth2 object of sec; nil for a value secret.
func newOAuth2JSON(sec *vault.Secret) *oauth2JSON {
	if sec.Kind != vault.KindOAuth2 || sec.OAuth2 == nil || sec.OAuth2Status == nil {
		return nil
	}
	o, st := sec.OAuth2, sec.OAuth2Status
	scopes, params := o.Scopes, o.AuthParams
	if scopes == nil {
		scopes = []string{}
	}
	if params == nil {
		params = map[string]string{}
	}
	return &oauth2JSON{
		oauth2SettingsJSON: oauth2SettingsJSON{Flow: string(o.Flow), TokenURL: o.TokenURL, AuthURL: o.AuthURL,
			DeviceAuthURL: o.DeviceAuthURL, ClientID: o.ClientID, Scopes: scopes, Audience: o.Audience, AuthParams: params},
		Status: oauth2StatusJSON{State: string(st.State), Reason: st.Reason, Refreshable: st.Refreshable,
			ExpiresAt: optTimestamp(st.ExpiresAt), ConnectedAt: optTimestamp(st.ConnectedAt), RefreshedAt: optTimestamp(st.RefreshedAt)},
	}
}

// secretInput turns a create request into the vault's input: the value of
// a value secret, or the settings and client secret of an oauth2 one. A
// field of the other kind is refused naming it.
func (req *createSecretRequest) secretInput() (vault.SecretInput, error) {
	in := vault.SecretInput{Name: req.Name, ProfileIDs: req.ProfileIDs, Description: req.Description,
		OAuth2: req.OAuth2.settings()}
	if req.Kind != nil {
		if *req.Kind == "" {
			return in, vault.Invalid("kind", "must be %q or %q", vault.KindValue, vault.KindOAuth2)
		}
		in.Kind = vault.Kind(*req.Kind)
	}
	if req.Scope != nil {
		if *req.Scope == "" {
			return in, vault.Invalid("scope", "must be %q or %q", vault.ScopeAll, vault.ScopeAgents)
		}
		in.Scope = vault.Scope(*req.Scope)
	}
	if in.Kind == vault.KindOAuth2 {
		if req.Value != "" {
			return in, vault.Invalid("value", "is not used with kind %q (tasks receive its access token): give client_secret", vault.KindOAuth2)
		}
		if req.ClientSecret != nil {
			in.Value = *req.ClientSecret
		}
		return in, nil
	}
	if req.ClientSecret != nil {
		return in, vault.Invalid("client_secret", "is only for secrets of kind %q", vault.KindOAuth2)
	}
	in.Value = req.Value
	return in, nil
}
