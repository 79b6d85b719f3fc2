package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// The Device Authorization flow (RFC 8628) of an oauth2 secret of flow
// device_code: envvault asks the provider's device endpoint for a user code,
// the dashboard shows it with the verification URL, and this process polls
// the token endpoint (x/oauth2's DeviceAccessToken: the provider's interval,
// slow_down honoured) until the user approves, denies, or the code
// expires; the outcome is written to the flow's row, which the dashboard
// reads. The device code itself stays in the polling goroutine's memory,
// never in the store: if the process ends, the flow shows as expired once
// its time is up. Ory Hydra v2.3.0 (the tests' server) has no device flow:
// storetest's OAuth2/DeviceFlow tests it against the suite's RFC 8628
// endpoint on loopback.

// OAuth2DeviceMaxWait bounds how long a device flow is polled, whatever
// expiry the provider gives (most give 15 minutes or less).
const OAuth2DeviceMaxWait = 30 * time.Minute

// StartOAuth2Device starts the device flow of an oauth2 secret of flow
// device_code and returns its record (user code, verification URI, expiry)
// while a goroutine polls for the token. sessionID is the dashboard session
// that starts it. Audited oauth2.authorize; the outcome oauth2.connect or
// oauth2.authorize_refused. Returns ENOTFOUND, EINVALID (field kind or
// flow; field device_auth_url when the provider refuses), EUNAVAILABLE if
// the provider cannot be reached, ELIMIT past MaxOAuth2Flows.
func (s *Service) StartOAuth2Device(ctx context.Context, userID, secretID, sessionID string) (*OAuth2FlowRecord, error) {
	cfg, err := s.OAuth2Config(ctx, userID, secretID)
	if err != nil {
		return nil, err
	}
	var settings OAuth2Settings
	if err := s.store.View(ctx, userID, func(tx Tx) error {
		_, c, err := oauth2Secret(ctx, tx, secretID)
		if err == nil {
			settings = c.Settings
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("start device flow of oauth2 secret %s: %w", secretID, err)
	}
	if settings.Flow != FlowDeviceCode {
		return nil, Invalid("flow", "this secret uses flow %q; the device flow is for flow %q", settings.Flow, FlowDeviceCode)
	}
	hctx, cancel := s.providerContext(ctx, cfg)
	defer cancel()
	da, err := cfg.DeviceAuth(hctx, settings.AuthCodeOptions()...)
	if err != nil {
		_, verr := providerRefusal("device_auth_url", "the provider refused the device authorization request", err)
		return nil, verr
	}
	now := s.timestamp()
	expires := now.Add(OAuth2DeviceMaxWait)
	if !da.Expiry.IsZero() && da.Expiry.Before(expires) {
		expires = da.Expiry.UTC().Truncate(time.Microsecond)
	}
	da.Expiry = expires
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	f := &OAuth2FlowRecord{ID: NewID(PrefixOAuth2Flow), UserID: userID, SecretID: secretID, Kind: FlowDeviceCode,
		UserCode: printableCut(da.UserCode, 64), VerificationURI: printableCut(uri, MaxOAuth2URLLen), Status: OAuth2FlowPending,
		CreatedAt: now, ExpiresAt: expires, UpdatedAt: now}
	if sessionID != "" {
		f.SessionKey = SessionKey(sessionID)
	}
	err = s.store.Update(ctx, userID, func(tx Tx) error {
		sec, _, _, err := s.startFlow(ctx, tx, f, FlowDeviceCode)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionOAuth2Authorize, TargetSecret, secretID, flowDetails(sec, f, "", ""))
	})
	if err != nil {
		return nil, fmt.Errorf("start device flow of oauth2 secret %s: %w", secretID, err)
	}
	go s.pollDevice(context.WithoutCancel(ctx), f, cfg, da)
	return f, nil
}

// pollDevice waits for the device flow's token and records the outcome.
func (s *Service) pollDevice(ctx context.Context, f *OAuth2FlowRecord, cfg *oauth2.Config, da *oauth2.DeviceAuthResponse) {
	ctx, cancel := context.WithDeadline(ctx, da.Expiry)
	defer cancel()
	// Each poll is one request of the refresh path's client; the polling
	// as a whole lasts until the code expires.
	tok, err := cfg.DeviceAccessToken(context.WithValue(ctx, oauth2.HTTPClient, s.oauth2.client), da)
	// The outcome is written even though polling ran out of time.
	ctx, cancelWrite := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelWrite()
	if err == nil {
		err = s.ConnectOAuth2(ctx, f.UserID, f.SecretID, tok)
		if err == nil {
			s.finishDevice(ctx, f, OAuth2FlowConnected, "")
			return
		}
	}
	reason := deviceRefusal(err)
	s.finishDevice(ctx, f, OAuth2FlowFailed, reason)
	_ = s.store.Update(ctx, f.UserID, func(tx Tx) error {
		return s.audit(ctx, tx, f.UserID, ActionOAuth2AuthorizeRefused, TargetSecret, f.SecretID, flowDetails(nil, f, "refused", reason))
	})
}

// deviceRefusal says why a device flow ended without tokens.
func deviceRefusal(err error) string {
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the code expired before it was approved"
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return "access was denied at the provider"
	case errors.As(err, &re) && re.ErrorCode == "expired_token":
		return "the code expired before it was approved"
	}
	reason, _ := providerRefusal("token_url", "the provider refused the device code", err)
	if ErrorCode(err) != EINTERNAL {
		reason = err.Error()
	}
	return reason
}

func (s *Service) finishDevice(ctx context.Context, f *OAuth2FlowRecord, status OAuth2FlowStatus, message string) {
	_ = s.store.Update(ctx, f.UserID, func(tx Tx) error {
		g := *f
		g.Status, g.Message, g.UpdatedAt = status, message, s.timestamp()
		return tx.UpdateOAuth2Flow(ctx, &g)
	})
}

// OAuth2DeviceFlow returns one of the user's device flows, for the page
// that shows its code and outcome; a pending flow past its expiry reads as
// failed. Returns ENOTFOUND (also for an authorization's id).
func (s *Service) OAuth2DeviceFlow(ctx context.Context, userID, flowID string) (*OAuth2FlowRecord, error) {
	var f *OAuth2FlowRecord
	err := s.store.View(ctx, userID, func(tx Tx) error {
		var err error
		f, err = tx.OAuth2Flow(ctx, flowID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read oauth2 flow %s: %w", flowID, err)
	}
	if f.Kind != FlowDeviceCode {
		return nil, Errorf(ENOTFOUND, "no device flow %s", flowID)
	}
	if f.Status == OAuth2FlowPending && !s.timestamp().Before(f.ExpiresAt) {
		f.Status, f.Message = OAuth2FlowFailed, "the code expired before it was approved"
	}
	return f, nil
}
