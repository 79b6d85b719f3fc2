package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/envvault/envvault/seal"
)

// OAuth2 secrets (issue 17). A secret of KindOAuth2 holds a connection to
// an OAuth2 provider instead of a plain value: readable settings
// (OAuth2Settings), a client secret (the secret's sealed value: write-only,
// versioned like any value), and tokens (access, refresh, expiry) sealed in
// a row of their own (OAuth2Connection) under a data key of their own. A
// task receives, under the secret's name, an access token valid for at
// least Options.OAuth2RefreshMargin (oauth2_refresh.go); the client secret
// and the refresh token never leave the vault.
//
// History: the versions of an oauth2 secret are those of its client
// secret. Connecting (ConnectOAuth2) and refreshing replace the tokens
// without making a version: a token lives an hour or so, and keeping old
// refresh tokens would keep live credentials around for nothing. Each is
// audited (oauth2.connect, oauth2.refresh, oauth2.refresh_failed: names,
// ids, expiry and reason, never a token).

// Kind says what a secret holds.
type Kind string

const (
	// KindValue is a NAME=value secret; a task receives its value. A
	// secret stored with no kind is one.
	KindValue Kind = "value"
	// KindOAuth2 is a connection to an OAuth2 provider; a task receives a
	// fresh access token, and the secret's value is the client secret.
	KindOAuth2 Kind = "oauth2"
)

// OrValue returns k, or KindValue for "": what a store writes.
func (k Kind) OrValue() Kind {
	if k == "" {
		return KindValue
	}
	return k
}

// OAuth2Flow is how an oauth2 secret gets its first tokens.
type OAuth2Flow string

const (
	// FlowClientCredentials needs no user: envvault asks the token
	// endpoint for a token with the client id and secret whenever the
	// current one is too old. It needs a client secret.
	FlowClientCredentials OAuth2Flow = "client_credentials"
	// FlowAuthorizationCode is connected by a user in the dashboard
	// (Authorization Code with PKCE and state); tokens are then refreshed
	// with the refresh token. It needs AuthURL.
	FlowAuthorizationCode OAuth2Flow = "authorization_code"
	// FlowDeviceCode is connected by a user entering a code at the
	// provider (Device Authorization); tokens are then refreshed with the
	// refresh token. It needs DeviceAuthURL.
	FlowDeviceCode OAuth2Flow = "device_code"
)

// OAuth2Flows lists the flows, in the order help texts show them.
var OAuth2Flows = []OAuth2Flow{FlowClientCredentials, FlowAuthorizationCode, FlowDeviceCode}

// Limits of an oauth2 secret's settings.
const (
	MaxOAuth2URLLen     = 2048
	MaxOAuth2ClientID   = 512
	MaxOAuth2Scopes     = 50
	MaxOAuth2ScopeLen   = 256
	MaxOAuth2ParamLen   = 512
	MaxOAuth2AuthParams = 20
	// MaxOAuth2TokenLen bounds each token a provider gives (access and
	// refresh): larger ones are refused rather than stored.
	MaxOAuth2TokenLen = 16 << 10
)

// OAuth2Settings are the readable settings of an oauth2 secret: nothing in
// them is a secret (the client secret is the secret's value, write-only).
// They are validated by Validate; JSON names are the API's.
type OAuth2Settings struct {
	Flow          OAuth2Flow `json:"flow"`
	TokenURL      string     `json:"token_url"`
	AuthURL       string     `json:"auth_url,omitempty"`        // required for authorization_code
	DeviceAuthURL string     `json:"device_auth_url,omitempty"` // required for device_code
	ClientID      string     `json:"client_id"`
	Scopes        []string   `json:"scopes,omitempty"`
	// Audience, if set, is sent as the `audience` parameter of token
	// requests (client credentials) and of the authorization request, as
	// Auth0 and Ory expect.
	Audience string `json:"audience,omitempty"`
	// AuthParams are extra query parameters of the authorization URL (for
	// Google: access_type=offline and prompt=consent, without which it
	// gives no refresh token). The parameters the flow sets itself are
	// refused.
	AuthParams map[string]string `json:"auth_params,omitempty"`
}

// reservedAuthParams are set by the flows; AuthParams may not set them.
var reservedAuthParams = []string{"client_id", "client_secret", "code_challenge", "code_challenge_method",
	"redirect_uri", "response_type", "scope", "state", "audience"}

// Validate checks the settings: a known flow, absolute http(s) URLs (the
// flow's own required), a client id, scopes without spaces, the limits.
// Its errors are EINVALID naming the field as prefix + its JSON name (the
// API passes "oauth2.").
func (o OAuth2Settings) Validate(prefix string) error {
	if !slices.Contains(OAuth2Flows, o.Flow) {
		return Invalid(prefix+"flow", "must be one of %q, %q, %q", FlowClientCredentials, FlowAuthorizationCode, FlowDeviceCode)
	}
	urls := []struct {
		field, value string
		required     bool
	}{
		{"token_url", o.TokenURL, true},
		{"auth_url", o.AuthURL, o.Flow == FlowAuthorizationCode},
		{"device_auth_url", o.DeviceAuthURL, o.Flow == FlowDeviceCode},
	}
	for _, u := range urls {
		if err := validateOAuth2URL(prefix+u.field, u.value, u.required, o.Flow); err != nil {
			return err
		}
	}
	if err := validateOAuth2Text(prefix+"client_id", o.ClientID, MaxOAuth2ClientID, true); err != nil {
		return err
	}
	if len(o.Scopes) > MaxOAuth2Scopes {
		return Invalid(prefix+"scopes", "must hold at most %d scopes", MaxOAuth2Scopes)
	}
	for i, sc := range o.Scopes {
		if err := validateOAuth2Text(fmt.Sprintf("%sscopes[%d]", prefix, i), sc, MaxOAuth2ScopeLen, true); err != nil {
			return err
		}
		if strings.ContainsFunc(sc, unicode.IsSpace) {
			return Invalid(fmt.Sprintf("%sscopes[%d]", prefix, i), "must not contain spaces (give each scope as its own item)")
		}
	}
	if err := validateOAuth2Text(prefix+"audience", o.Audience, MaxOAuth2ParamLen, false); err != nil {
		return err
	}
	return validateAuthParams(prefix+"auth_params", o.AuthParams)
}

func validateOAuth2URL(field, v string, required bool, flow OAuth2Flow) error {
	if v == "" {
		if required {
			return Invalid(field, "is required with flow %q", flow)
		}
		return nil
	}
	if len(v) > MaxOAuth2URLLen {
		return Invalid(field, "must be at most %d bytes", MaxOAuth2URLLen)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return Invalid(field, "must be an absolute http or https URL, such as https://provider.example/oauth/token")
	}
	if u.User != nil {
		return Invalid(field, "must not hold a user name or password (settings are readable: the client secret goes in client_secret)")
	}
	if u.Fragment != "" {
		return Invalid(field, "must not have a fragment (#...)")
	}
	return nil
}

func validateOAuth2Text(field, v string, maxLen int, required bool) error {
	switch {
	case v == "" && required:
		return Invalid(field, "is required")
	case len(v) > maxLen:
		return Invalid(field, "must be at most %d bytes", maxLen)
	case !utf8Clean(v):
		return Invalid(field, "must be valid UTF-8 without control characters")
	}
	return nil
}

func validateAuthParams(field string, params map[string]string) error {
	if len(params) > MaxOAuth2AuthParams {
		return Invalid(field, "must hold at most %d parameters", MaxOAuth2AuthParams)
	}
	for k, v := range params {
		if err := validateOAuth2Text(field, k, MaxOAuth2ParamLen, true); err != nil {
			return Invalid(field, "parameter names must be 1 to %d bytes of UTF-8 without control characters", MaxOAuth2ParamLen)
		}
		if slices.Contains(reservedAuthParams, strings.ToLower(k)) {
			return Invalid(field, "must not set %q: the flow sets it", truncate(k, 64))
		}
		if err := validateOAuth2Text(field+"."+truncate(k, 64), v, MaxOAuth2ParamLen, false); err != nil {
			return err
		}
	}
	return nil
}

func utf8Clean(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// tokenChanging reports whether next differs from o in what the tokens
// were issued for (flow, token URL, client, scopes, audience): such a
// change drops the stored tokens. A change of the authorization or device
// URL or of AuthParams keeps them.
func (o OAuth2Settings) tokenChanging(next OAuth2Settings) bool {
	return o.Flow != next.Flow || o.TokenURL != next.TokenURL || o.ClientID != next.ClientID ||
		!slices.Equal(o.Scopes, next.Scopes) || o.Audience != next.Audience
}

// AuthCodeOptions are the options of an authorization request (AuthCodeURL,
// DeviceAuth) that the settings add: Audience and AuthParams.
func (o OAuth2Settings) AuthCodeOptions() []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	if o.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", o.Audience))
	}
	keys := make([]string, 0, len(o.AuthParams))
	for k := range o.AuthParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		opts = append(opts, oauth2.SetAuthURLParam(k, o.AuthParams[k]))
	}
	return opts
}

// OAuth2State says whether an oauth2 secret can give tasks a token.
type OAuth2State string

const (
	// OAuth2Pending: no token yet. A client credentials secret gets its
	// first at the first task start; the other flows wait for a user to
	// connect them.
	OAuth2Pending OAuth2State = "pending"
	// OAuth2Connected: it holds tokens, and the last refresh worked.
	OAuth2Connected OAuth2State = "connected"
	// OAuth2NeedsReconnect: the last refresh failed (Reason says why); the
	// tasks that needed it failed. A later task start tries again; a new
	// connection, client secret or settings clear it.
	OAuth2NeedsReconnect OAuth2State = "needs_reconnect"
)

// OAuth2Status is what may be shown of an oauth2 secret's tokens: never a
// token.
type OAuth2Status struct {
	State  OAuth2State
	Reason string // why it needs reconnecting; "" otherwise
	// Refreshable: a refresh token is held (client credentials need none).
	Refreshable bool
	ExpiresAt   *time.Time // the access token's expiry; nil if none is held or it has none
	ConnectedAt *time.Time // the last ConnectOAuth2 (or first client credentials token)
	RefreshedAt *time.Time // the last refresh that worked
}

// OAuth2Connection is an oauth2 secret's row of settings, status and
// sealed tokens, as stored (one per oauth2 secret, deleted with it). The
// tokens are one JSON document (oauth2Tokens) under a data key of their
// own, bound to UserID and SecretID (not to the name: a rename keeps them);
// all three sealed fields are empty until the first token.
type OAuth2Connection struct {
	SecretID     string
	UserID       string
	Settings     OAuth2Settings
	Status       OAuth2Status
	SealedTokens []byte
	SealedKey    []byte
	MasterKeyID  string
	UpdatedAt    time.Time // every write sets it; a refresh writes only over the row it read
}

// OAuth2Tx is what a user's transaction does with oauth2 connections.
type OAuth2Tx interface {
	// OAuth2Connection returns an oauth2 secret's connection. Returns
	// ENOTFOUND if there is none.
	OAuth2Connection(ctx context.Context, secretID string) (*OAuth2Connection, error)
	// PutOAuth2Connection inserts or replaces the connection of c.SecretID.
	// Returns ENOTFOUND if the secret is not the user's.
	PutOAuth2Connection(ctx context.Context, c *OAuth2Connection) error
}

// OAuth2Store is what key rotation does with oauth2 connections, across
// users (as SealedKeysOfAllUsers and SwapSealedKeysOfAllUsers for
// secrets): only rows holding tokens have a data key.
type OAuth2Store interface {
	SealedOAuth2KeysOfAllUsers(ctx context.Context, notKeyID, afterID string, limit int) ([]SealedKey, error)
	SwapSealedOAuth2KeysOfAllUsers(ctx context.Context, keyID string, swaps []KeySwap) (int, error)
}

// RefreshLocker is implemented by a store that several processes share
// (PostgreSQL): LockRefresh takes a lock named by key, shared by every
// process of the store, and waits for it until ctx ends; unlock releases
// it. It holds no transaction open (PostgreSQL: a session advisory lock on
// a connection of its own). Without it, refreshes take turns within the
// process only (SQLite: one process).
type RefreshLocker interface {
	LockRefresh(ctx context.Context, key string) (unlock func(), err error)
}

// oauth2Tokens is the sealed JSON document of an oauth2 secret's tokens.
type oauth2Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

func tokensOf(t *oauth2.Token) *oauth2Tokens {
	return &oauth2Tokens{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		Expiry: t.Expiry.UTC().Truncate(time.Microsecond)}
}

// validateToken checks a token a flow or a refresh got: an access token,
// within the limits. Its errors name the field, never a token.
func validateToken(t *oauth2.Token) error {
	switch {
	case t == nil || t.AccessToken == "":
		return Invalid("access_token", "is required: the provider gave no access token")
	case len(t.AccessToken) > MaxOAuth2TokenLen || len(t.RefreshToken) > MaxOAuth2TokenLen:
		return Invalid("access_token", "the provider gave a token longer than %d bytes", MaxOAuth2TokenLen)
	case strings.IndexByte(t.AccessToken, 0) >= 0:
		return Invalid("access_token", "must not contain a NUL byte (it could not be passed as an environment variable)")
	}
	return nil
}

// What binds an oauth2 secret's sealed tokens: to its user and secret id.
// Part of the stored data, as the labels of sealing.go.
const (
	labelOAuth2Tokens  = "envvault oauth2 tokens v1"
	labelOAuth2DataKey = "envvault oauth2 data key v1"
)

func oauth2KeyAAD(userID, secretID string) []byte {
	return seal.AAD(labelOAuth2DataKey, userID, secretID)
}

// sealTokens seals t into c under a fresh data key and sets the status
// fields the tokens decide (Refreshable, ExpiresAt).
func (k keyring) sealTokens(c *OAuth2Connection, t *oauth2Tokens) error {
	doc, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode tokens: %w", err)
	}
	defer clear(doc)
	e, err := k.SealEnvelope(doc, seal.AAD(labelOAuth2Tokens, c.UserID, c.SecretID), oauth2KeyAAD(c.UserID, c.SecretID))
	if err != nil {
		return fmt.Errorf("seal tokens of secret %s: %w", c.SecretID, err)
	}
	c.SealedTokens, c.SealedKey, c.MasterKeyID = e.Value, e.Key, e.KeyID
	c.Status.Refreshable = t.RefreshToken != ""
	c.Status.ExpiresAt = nil
	if !t.Expiry.IsZero() {
		exp := t.Expiry
		c.Status.ExpiresAt = &exp
	}
	return nil
}

// openTokens returns c's tokens, nil if it holds none. Its errors name the
// secret and never hold a token.
func (k keyring) openTokens(c *OAuth2Connection) (*oauth2Tokens, error) {
	if c.SealedTokens == nil {
		return nil, nil
	}
	doc, err := k.OpenEnvelope(c.SealedTokens, c.SealedKey, seal.AAD(labelOAuth2Tokens, c.UserID, c.SecretID),
		oauth2KeyAAD(c.UserID, c.SecretID))
	if err != nil {
		return nil, fmt.Errorf("secret %s: tokens: %w: %w", c.SecretID, ErrDecrypt, err)
	}
	defer clear(doc)
	var t oauth2Tokens
	if err := json.Unmarshal(doc, &t); err != nil {
		return nil, fmt.Errorf("secret %s: tokens do not decode", c.SecretID)
	}
	return &t, nil
}

// dropTokens empties c's tokens and their status.
func (c *OAuth2Connection) dropTokens() {
	c.SealedTokens, c.SealedKey, c.MasterKeyID = nil, nil, ""
	c.Status = OAuth2Status{State: OAuth2Pending}
}

// oauth2Secret reads a secret and its connection in tx, and fails unless
// it is an oauth2 secret. Returns ENOTFOUND, or EINVALID (field kind).
func oauth2Secret(ctx context.Context, tx Tx, secretID string) (*Secret, *OAuth2Connection, error) {
	sec, err := tx.Secret(ctx, secretID)
	if err != nil {
		return nil, nil, err
	}
	if sec.Kind != KindOAuth2 {
		return nil, nil, Invalid("kind", "secret %s is not an oauth2 secret", sec.Name)
	}
	c, err := tx.OAuth2Connection(ctx, secretID)
	if err != nil {
		return nil, nil, fmt.Errorf("read oauth2 connection of secret %s: %w", secretID, err)
	}
	return sec, c, nil
}

// OAuth2Config returns an oauth2 secret's settings and client secret as an
// oauth2.Config (RedirectURL left empty), for the flows that connect it
// (the dashboard's Connect and device pages) and nothing else: it holds the
// client secret, so it must never be serialised, logged or shown. Add
// Settings.AuthCodeOptions to the authorization request. Returns ENOTFOUND
// if the user has no such secret, EINVALID (field kind) if it is not an
// oauth2 secret.
func (s *Service) OAuth2Config(ctx context.Context, userID, secretID string) (*oauth2.Config, error) {
	var cfg *oauth2.Config
	err := s.store.View(ctx, userID, func(tx Tx) error {
		sec, c, err := oauth2Secret(ctx, tx, secretID)
		if err != nil {
			return err
		}
		cfg, err = s.oauth2Config(sec, c.Settings)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("oauth2 config of secret %s: %w", secretID, err)
	}
	return cfg, nil
}

// oauth2Config builds the config of sec with settings o, opening the
// client secret.
func (s *Service) oauth2Config(sec *Secret, o OAuth2Settings) (*oauth2.Config, error) {
	clientSecret, err := s.keys.openSecret(sec)
	if err != nil {
		return nil, fmt.Errorf("client secret of %s: %w: %w", sec.Name, ErrDecrypt, err)
	}
	return &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: clientSecret, Scopes: slices.Clone(o.Scopes),
		Endpoint: oauth2.Endpoint{AuthURL: o.AuthURL, TokenURL: o.TokenURL, DeviceAuthURL: o.DeviceAuthURL},
	}, nil
}

// ConnectOAuth2 stores the tokens a completed flow got for an oauth2
// secret, sealed, replacing any it held, and marks it connected (clearing
// needs_reconnect); audited oauth2.connect (name, flow, expiry, whether a
// refresh token came; never a token). It makes no version. Returns
// ENOTFOUND if the user has no such secret, EINVALID if it is not an
// oauth2 secret (field kind) or tok has no access token (field
// access_token).
func (s *Service) ConnectOAuth2(ctx context.Context, userID, secretID string, tok *oauth2.Token) error {
	if err := validateToken(tok); err != nil {
		return err
	}
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		if err := tx.Lock(ctx, secretID); err != nil {
			return err
		}
		sec, c, err := oauth2Secret(ctx, tx, secretID)
		if err != nil {
			return err
		}
		now := s.timestamp()
		if err := s.keys.sealTokens(c, tokensOf(tok)); err != nil {
			return err
		}
		c.Status.State, c.Status.Reason = OAuth2Connected, ""
		c.Status.ConnectedAt, c.Status.RefreshedAt, c.UpdatedAt = &now, nil, now
		if err := tx.PutOAuth2Connection(ctx, c); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionOAuth2Connect, TargetSecret, secretID, oauth2Details(sec, c))
	})
	if err != nil {
		return fmt.Errorf("connect oauth2 secret %s: %w", secretID, err)
	}
	return nil
}

// oauth2Details are the details of an oauth2.* event: names and times,
// never a token.
func oauth2Details(sec *Secret, c *OAuth2Connection) map[string]any {
	d := map[string]any{"name": sec.Name, "flow": string(c.Settings.Flow), "state": string(c.Status.State),
		"refreshable": c.Status.Refreshable}
	if c.Status.ExpiresAt != nil {
		d["expires_at"] = c.Status.ExpiresAt.Format(time.RFC3339)
	}
	if c.Status.Reason != "" {
		d["reason"] = c.Status.Reason
	}
	return d
}

// withOAuth2 fills the settings and status of the oauth2 secrets among
// secs, in one read.
func (s *Service) withOAuth2(ctx context.Context, userID string, secs ...*Secret) error {
	if !slices.ContainsFunc(secs, func(sec *Secret) bool { return sec.Kind == KindOAuth2 }) {
		return nil
	}
	return s.store.View(ctx, userID, func(tx Tx) error { return fillOAuth2(ctx, tx, secs...) })
}

// fillOAuth2 is withOAuth2 in tx.
func fillOAuth2(ctx context.Context, tx Tx, secs ...*Secret) error {
	for _, sec := range secs {
		if sec.Kind != KindOAuth2 {
			continue
		}
		c, err := tx.OAuth2Connection(ctx, sec.ID)
		if err != nil {
			return fmt.Errorf("read oauth2 connection of secret %s: %w", sec.ID, err)
		}
		settings, status := c.Settings, c.Status
		sec.OAuth2, sec.OAuth2Status = &settings, &status
	}
	return nil
}
