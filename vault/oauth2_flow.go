package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/envvault/envvault/seal"
)

// The interactive flows that connect an oauth2 secret (issue 17): a user's
// consent through the Authorization Code flow with PKCE (RFC 7636) and a
// validated state, and the Device Authorization flow (RFC 8628). A flow
// that has started is a row (OAuth2FlowRecord) until it completes, fails
// or expires; what it gets is stored by ConnectOAuth2.
//
// The state of an authorization is 256 random bits, shown only in the
// authorization URL and the provider's redirect back; the store keeps its
// SHA-256. It is single use (the row is deleted by the completion that
// takes it, whatever the outcome), bound to the user (another user's state
// is not found) and, when started from the dashboard, to the sign-in
// session (another session's completion is refused and leaves the row),
// and expires after OAuth2FlowTTL. The PKCE verifier is sealed under the
// master key, bound to the user, the flow and the secret. Flows are not
// re-sealed by key rotation: they live OAuth2FlowTTL at most, and one
// sealed under a key removed since fails to complete (start again).

// OAuth2FlowTTL is how long an authorization may take from its start to
// the provider's redirect back: the user signs in and consents meanwhile.
const OAuth2FlowTTL = 10 * time.Minute

// MaxOAuth2Flows is how many flows a user may have pending at once (each
// start makes one; completions and expiry end them): more is ELIMIT.
const MaxOAuth2Flows = 20

// PrefixOAuth2Flow prefixes flow ids.
const PrefixOAuth2Flow = "oaf_"

// labelOAuth2Verifier binds a sealed PKCE verifier (see sealing.go).
const labelOAuth2Verifier = "envvault oauth2 pkce verifier v1"

// OAuth2FlowStatus is where a started flow stands.
type OAuth2FlowStatus string

const (
	OAuth2FlowPending   OAuth2FlowStatus = "pending"
	OAuth2FlowConnected OAuth2FlowStatus = "connected"
	OAuth2FlowFailed    OAuth2FlowStatus = "failed"
)

// OAuth2FlowRecord is a started flow as stored. An authorization has
// StateHash, RedirectURL and SealedVerifier; a device flow has UserCode and
// VerificationURI. Neither holds anything that lets its reader get a token.
type OAuth2FlowRecord struct {
	ID       string
	UserID   string
	SecretID string
	Kind     OAuth2Flow // FlowAuthorizationCode or FlowDeviceCode
	// StateHash is the SHA-256 of the state; nil for a device flow.
	StateHash []byte
	// SessionKey is SessionKey of the dashboard session that started it;
	// "" when started through the API (bound to the user only).
	SessionKey      string
	RedirectURL     string
	SealedVerifier  []byte
	UserCode        string
	VerificationURI string
	Status          OAuth2FlowStatus
	Message         string // why it failed; "" otherwise
	CreatedAt       time.Time
	ExpiresAt       time.Time
	UpdatedAt       time.Time
}

// OAuth2FlowTx is what a user's transaction does with started flows.
type OAuth2FlowTx interface {
	// InsertOAuth2Flow inserts f, after deleting the user's flows that
	// expired by f.CreatedAt. Returns ENOTFOUND if the secret is not the
	// user's.
	InsertOAuth2Flow(ctx context.Context, f *OAuth2FlowRecord) error
	// PendingOAuth2Flows counts the user's pending flows not expired at now.
	PendingOAuth2Flows(ctx context.Context, now time.Time) (int, error)
	// OAuth2FlowByState returns the user's authorization whose state hashes
	// to stateHash. Returns ENOTFOUND if there is none.
	OAuth2FlowByState(ctx context.Context, stateHash []byte) (*OAuth2FlowRecord, error)
	// OAuth2Flow returns one of the user's flows. Returns ENOTFOUND.
	OAuth2Flow(ctx context.Context, id string) (*OAuth2FlowRecord, error)
	// UpdateOAuth2Flow writes f's Status, Message and UpdatedAt. Returns
	// ENOTFOUND if it is gone.
	UpdateOAuth2Flow(ctx context.Context, f *OAuth2FlowRecord) error
	// DeleteOAuth2Flow deletes a flow. Returns ENOTFOUND if it is gone
	// already: of two completions of one state, one deletes it.
	DeleteOAuth2Flow(ctx context.Context, id string) error
}

// OAuth2Authorization is a started authorization: where to send the user.
type OAuth2Authorization struct {
	URL       string
	ExpiresAt time.Time
}

// StartOAuth2Authorization starts connecting an oauth2 secret of flow
// authorization_code: it stores a flow (state hash, sealed PKCE verifier,
// redirectURL, expiry) and returns the provider's authorization URL with the
// state, the S256 code challenge, the scopes and the settings' extra
// parameters. sessionID is the dashboard session that starts it ("" from
// the API). Audited oauth2.authorize. Returns ENOTFOUND, EINVALID (field
// kind or flow), ELIMIT past MaxOAuth2Flows.
func (s *Service) StartOAuth2Authorization(ctx context.Context, userID, secretID, sessionID, redirectURL string) (*OAuth2Authorization, error) {
	if u, err := url.Parse(redirectURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("oauth2 redirect URL %q is not an absolute http(s) URL", redirectURL)
	}
	state, err := randomState()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	now := s.timestamp()
	f := &OAuth2FlowRecord{ID: NewID(PrefixOAuth2Flow), UserID: userID, SecretID: secretID, Kind: FlowAuthorizationCode,
		StateHash: hashState(state), RedirectURL: redirectURL, Status: OAuth2FlowPending,
		CreatedAt: now, ExpiresAt: now.Add(OAuth2FlowTTL), UpdatedAt: now}
	if sessionID != "" {
		f.SessionKey = SessionKey(sessionID)
	}
	f.SealedVerifier = s.keys.Seal([]byte(verifier), verifierAAD(f))
	var cfg *oauth2.Config
	var settings OAuth2Settings
	err = s.store.Update(ctx, userID, func(tx Tx) error {
		var sec *Secret
		sec, cfg, settings, err = s.startFlow(ctx, tx, f, FlowAuthorizationCode)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionOAuth2Authorize, TargetSecret, secretID, flowDetails(sec, f, "", ""))
	})
	if err != nil {
		return nil, fmt.Errorf("start authorization of oauth2 secret %s: %w", secretID, err)
	}
	cfg.RedirectURL = redirectURL
	opts := append(settings.AuthCodeOptions(), oauth2.S256ChallengeOption(verifier))
	return &OAuth2Authorization{URL: cfg.AuthCodeURL(state, opts...), ExpiresAt: f.ExpiresAt}, nil
}

// startFlow checks that the secret is an oauth2 secret of the flow kind,
// that the user is under MaxOAuth2Flows, and inserts f.
func (s *Service) startFlow(ctx context.Context, tx Tx, f *OAuth2FlowRecord, kind OAuth2Flow) (*Secret, *oauth2.Config, OAuth2Settings, error) {
	if err := tx.Lock(ctx, f.SecretID); err != nil {
		return nil, nil, OAuth2Settings{}, err
	}
	sec, c, err := oauth2Secret(ctx, tx, f.SecretID)
	if err != nil {
		return nil, nil, OAuth2Settings{}, err
	}
	if c.Settings.Flow != kind {
		return nil, nil, OAuth2Settings{}, Invalid("flow", "secret %s uses flow %q; this connection is for flow %q", sec.Name, c.Settings.Flow, kind)
	}
	n, err := tx.PendingOAuth2Flows(ctx, f.CreatedAt)
	if err != nil {
		return nil, nil, OAuth2Settings{}, err
	}
	if n >= MaxOAuth2Flows {
		return nil, nil, OAuth2Settings{}, NewLimitError("oauth2_flows", OAuth2FlowTTL,
			"you have %d oauth2 connections in progress, the most allowed: finish one or wait up to %s", n, OAuth2FlowTTL)
	}
	cfg, err := s.oauth2Config(sec, c.Settings)
	if err != nil {
		return nil, nil, OAuth2Settings{}, err
	}
	if err := tx.InsertOAuth2Flow(ctx, f); err != nil {
		return nil, nil, OAuth2Settings{}, err
	}
	return sec, cfg, c.Settings, nil
}

func randomState() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random oauth2 state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

func verifierAAD(f *OAuth2FlowRecord) []byte {
	return seal.AAD(labelOAuth2Verifier, f.UserID, f.ID, f.SecretID)
}

// OAuth2Completion names the secret a completed flow connected.
type OAuth2Completion struct {
	SecretID string
	Name     string
}

// OAuth2Callback is what the provider's redirect back carries.
type OAuth2Callback struct {
	State string
	Code  string
	// Error and ErrorDescription are the provider's refusal (e.g.
	// access_denied when the user declined).
	Error, ErrorDescription string
}

// CompleteOAuth2Authorization completes the authorization whose state cb
// carries: the state must be the user's, started by sessionID's session
// if a session started it, unexpired and unused. It is used up (whatever
// the outcome, except another session's completion, which leaves it), the
// code is exchanged with the PKCE verifier, and the tokens are stored by
// ConnectOAuth2. It returns the secret's name. A refusal is audited
// oauth2.authorize_refused (reason; never the state, code or a token) and
// changes no secret. It returns the secret connected. Returns EINVALID (field state: unknown, used, another
// user's or session's, expired; field code: the provider refused or gave
// no code), EUNAVAILABLE if the provider cannot be reached, ENOTFOUND if
// the secret was deleted meanwhile.
func (s *Service) CompleteOAuth2Authorization(ctx context.Context, userID, sessionID string, cb OAuth2Callback) (*OAuth2Completion, error) {
	f, sec, refusal, err := s.takeFlow(ctx, userID, sessionID, cb)
	if err != nil {
		return nil, fmt.Errorf("complete oauth2 authorization: %w", err)
	}
	if refusal != nil {
		return nil, refusal
	}
	verifier, err := s.keys.Open(f.SealedVerifier, verifierAAD(f))
	if err != nil {
		return nil, s.refuseFlow(ctx, f, sec, "the flow's PKCE verifier does not open (the master key changed): start again",
			fmt.Errorf("open pkce verifier of flow %s: %w: %w", f.ID, ErrDecrypt, err))
	}
	cfg, err := s.OAuth2Config(ctx, userID, f.SecretID)
	if err != nil {
		return nil, err
	}
	cfg.RedirectURL = f.RedirectURL
	hctx, cancel := s.providerContext(ctx, cfg)
	defer cancel()
	tok, err := cfg.Exchange(hctx, cb.Code, oauth2.VerifierOption(string(verifier)))
	clear(verifier)
	if err != nil {
		reason, verr := providerRefusal("code", "the provider refused the authorization code", err)
		return nil, s.refuseFlow(ctx, f, sec, reason, verr)
	}
	if err := s.ConnectOAuth2(ctx, userID, f.SecretID, tok); err != nil {
		return nil, err
	}
	return &OAuth2Completion{SecretID: sec.ID, Name: sec.Name}, nil
}

// reasonUnknownState is the refusal of a state no flow of the user has.
const reasonUnknownState = "unknown state: forged, used already, or another user's"

// takeFlow finds and uses up the flow of cb.State in one transaction. A
// refusal (third result) is committed with its audit event.
func (s *Service) takeFlow(ctx context.Context, userID, sessionID string, cb OAuth2Callback) (*OAuth2FlowRecord, *Secret, error, error) {
	var f *OAuth2FlowRecord
	var sec *Secret
	var refusal error
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		sec, refusal = nil, nil
		var field, reason string
		var err error
		f, field, reason, err = useFlow(ctx, tx, sessionID, cb, s.timestamp())
		if err != nil {
			return err
		}
		if f != nil {
			if sec, err = tx.Secret(ctx, f.SecretID); err != nil {
				return err
			}
		}
		if reason == "" {
			return nil
		}
		refusal = Invalid(field, "%s", refusalMessage(reason))
		targetID := ""
		if f != nil {
			targetID = f.SecretID
		}
		return s.audit(ctx, tx, userID, ActionOAuth2AuthorizeRefused, TargetSecret, targetID, flowDetails(sec, f, "refused", reason))
	})
	return f, sec, refusal, err
}

// useFlow finds the flow of cb.State and deletes it (single use), unless
// another session started it. It returns the field and reason of a
// refusal, "" if the flow goes on. The flow is nil if none was found.
func useFlow(ctx context.Context, ftx OAuth2FlowTx, sessionID string, cb OAuth2Callback, now time.Time) (*OAuth2FlowRecord, string, string, error) {
	if cb.State == "" {
		return nil, "state", "the provider's redirect carried no state", nil
	}
	f, err := ftx.OAuth2FlowByState(ctx, hashState(cb.State))
	switch {
	case ErrorCode(err) == ENOTFOUND:
		return nil, "state", reasonUnknownState, nil
	case err != nil:
		return nil, "", "", err
	case f.Kind != FlowAuthorizationCode:
		return nil, "state", reasonUnknownState, nil
	case f.SessionKey != "" && (sessionID == "" || f.SessionKey != SessionKey(sessionID)):
		// Left in place: the session that started it may still finish.
		return f, "state", "the state belongs to another sign-in session of this user", nil
	}
	if err := ftx.DeleteOAuth2Flow(ctx, f.ID); err != nil {
		if ErrorCode(err) == ENOTFOUND { // another completion took it first
			return nil, "state", reasonUnknownState, nil
		}
		return nil, "", "", err
	}
	switch {
	case !now.Before(f.ExpiresAt):
		return f, "state", fmt.Sprintf("the state expired (a connection must complete within %s)", OAuth2FlowTTL), nil
	case cb.Error != "":
		return f, "code", "the provider answered " + printableCut(cb.Error, 64) + descriptionOf(cb.ErrorDescription), nil
	case cb.Code == "":
		return f, "code", "the provider's redirect carried no code", nil
	}
	return f, "", "", nil
}

func descriptionOf(d string) string {
	if d == "" {
		return ""
	}
	return ": " + printableCut(d, 200)
}

// printableCut keeps at most n bytes of s's printable ASCII: what a
// provider says is shown and audited, so it may not carry markup or
// control bytes (html/template escapes it anyway).
func printableCut(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// refusalMessage turns a refusal reason into what the user reads.
func refusalMessage(reason string) string {
	if reason == reasonUnknownState {
		return "this connection link is not valid: it was used already, belongs to another user, or was not made by envvault. Start Connect again"
	}
	return reason + ". Start Connect again"
}

// refuseFlow audits a refusal after the flow was used up, and returns err.
func (s *Service) refuseFlow(ctx context.Context, f *OAuth2FlowRecord, sec *Secret, reason string, err error) error {
	aerr := s.store.Update(ctx, f.UserID, func(tx Tx) error {
		return s.audit(ctx, tx, f.UserID, ActionOAuth2AuthorizeRefused, TargetSecret, f.SecretID, flowDetails(sec, f, "refused", reason))
	})
	return errors.Join(err, aerr)
}

// providerRefusal turns a failed token request into a reason (the OAuth2
// error code and description only: a provider's error body holds no token,
// but nothing else of it is kept) and the error to return: EINVALID naming
// field when the provider answered, EUNAVAILABLE when it could not be
// reached.
func providerRefusal(field, what string, err error) (string, error) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := printableCut(re.ErrorCode, 64)
		if code == "" {
			code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
		reason := what + ": " + code + descriptionOf(re.ErrorDescription)
		return reason, Invalid(field, "%s", reason)
	}
	reason := what + ": the provider could not be reached"
	return reason, &Error{Code: EUNAVAILABLE, Field: field, Message: reason}
}

// flowDetails are an oauth2.authorize* event's details: names, ids,
// expiry, outcome; never the state, code, verifier or a token.
func flowDetails(sec *Secret, f *OAuth2FlowRecord, outcome, reason string) map[string]any {
	d := map[string]any{}
	if sec != nil {
		d["name"] = sec.Name
	}
	if f != nil {
		d["flow"], d["flow_id"] = string(f.Kind), f.ID
		d["expires_at"] = f.ExpiresAt.Format(time.RFC3339)
		d["via"] = "api"
		if f.SessionKey != "" {
			d["via"] = "dashboard"
		}
	}
	if outcome != "" {
		d["outcome"] = outcome
	}
	if reason != "" {
		d["reason"] = reason
	}
	return d
}

// OAuth2CallbackPath is the dashboard's route a provider redirects to at
// the end of an authorization (web/oauth2.go serves it).
const OAuth2CallbackPath = "/oauth2/callback"

// OAuth2CallbackURL is the redirect (callback) URL of an envvault whose
// dashboard browsers reach at publicURL (scheme, host, any path prefix):
// what an operator registers at the provider.
func OAuth2CallbackURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + OAuth2CallbackPath
}

// providerContext is ctx for a call to cfg's provider as the refresh path
// makes it (oauth2_refresh.go): its HTTP client (no redirect followed), its
// timeout per call, and the client secret by HTTP Basic (in the form for a
// public client).
func (s *Service) providerContext(ctx context.Context, cfg *oauth2.Config) (context.Context, context.CancelFunc) {
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if cfg.ClientSecret == "" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	hctx, cancel := context.WithTimeout(ctx, s.oauth2.timeout)
	return context.WithValue(hctx, oauth2.HTTPClient, s.oauth2.client), cancel
}
